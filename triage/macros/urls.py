from django.urls import path

from triage.macros import views

urlpatterns = [
    path("macros/", views.macro_list, name="macros"),
    path("macros/new/", views.macro_edit, name="macro_new"),
    path("macros/<id:macro_id>/", views.macro_edit, name="macro_edit"),
    path("macros/<id:macro_id>/active/", views.macro_set_active, name="macro_set_active"),
    path("tickets/<id:ticket_id>/macro/", views.ticket_apply_macro, name="ticket_apply_macro"),
]
