from django.urls import path

from webhooks import views

urlpatterns = [
    path("webhooks/", views.endpoint_list, name="webhooks"),
    path("webhooks/new/", views.endpoint_edit, name="webhook_new"),
    path("webhooks/<id:endpoint_id>/", views.endpoint_deliveries, name="webhook_deliveries"),
    path("webhooks/<id:endpoint_id>/edit/", views.endpoint_edit, name="webhook_edit"),
    path("webhooks/<id:endpoint_id>/rotate/", views.endpoint_rotate, name="webhook_rotate"),
    path("webhooks/<id:endpoint_id>/test/", views.endpoint_test, name="webhook_test"),
    path(
        "webhooks/<id:endpoint_id>/deliveries/<id:delivery_id>/redeliver/",
        views.delivery_redeliver,
        name="webhook_redeliver",
    ),
]
