from django.urls import path

from mailgate import mailbox_views, views

urlpatterns = [
    path("attachments/<id:attachment_id>/", views.attachment_download, name="mail_attachment"),
    path("mailboxes/", mailbox_views.mailbox_list, name="mailboxes"),
    path("mailboxes/new/", mailbox_views.mailbox_edit, name="mailbox_new"),
    path("mailboxes/<id:mailbox_id>/", mailbox_views.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<id:mailbox_id>/test/", mailbox_views.mailbox_test, name="mailbox_test"),
]
