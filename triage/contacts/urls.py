from django.urls import path

from triage.contacts import views

urlpatterns = [
    path("customers/<id:customer_id>/contacts/new/", views.contact_edit, name="contact_new"),
    path("contacts/<id:contact_id>/", views.contact_edit, name="contact_edit"),
    path("contacts/<id:contact_id>/remove/", views.contact_remove, name="contact_remove"),
]
