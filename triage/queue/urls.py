from django.urls import path

from triage.queue import views

urlpatterns = [
    path("tickets/bulk/", views.queue_bulk, name="queue_bulk"),
    path("tickets/views/", views.saved_view_save, name="saved_view_save"),
    path("tickets/views/<id:view_id>/delete/", views.saved_view_delete, name="saved_view_delete"),
]
