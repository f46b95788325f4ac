from django.urls import path

from mailgate import views

urlpatterns = [
    path("attachments/<id:attachment_id>/", views.attachment_download, name="mail_attachment"),
]
