from django.urls import path

from mailgate import held_views, mailbox_views, views

urlpatterns = [
    path("attachments/<id:attachment_id>/", views.attachment_download, name="mail_attachment"),
    path("mailboxes/", mailbox_views.mailbox_list, name="mailboxes"),
    path("mailboxes/new/", mailbox_views.mailbox_edit, name="mailbox_new"),
    path("mailboxes/<id:mailbox_id>/", mailbox_views.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<id:mailbox_id>/test/", mailbox_views.mailbox_test, name="mailbox_test"),
    path("held/", held_views.held_list, name="held_mail"),
    path("held/<id:message_id>/ticket/", held_views.held_ticket, name="held_mail_ticket"),
    path("held/<id:message_id>/reject/", held_views.held_reject, name="held_mail_reject"),
    path("routes/", held_views.route_list, name="mail_routes"),
    path("routes/<id:route_id>/delete/", held_views.route_delete, name="mail_route_delete"),
]
