"""This package's routes: browser pages (`urlpatterns`) and REST API (`api_urlpatterns`, mounted under /api/)."""

from django.urls import path

from . import apis, views

W = "projects/<id:project_id>/settings/webhooks"

urlpatterns = [
    path(f"{W}/", views.webhook_list, name="webhook-list"),
    path(f"{W}/<id:webhook_id>/", views.webhook_detail, name="webhook-detail"),
    path(f"{W}/<id:webhook_id>/deliveries/", views.webhook_deliveries, name="webhook-deliveries"),
    path(f"{W}/<id:webhook_id>/secret/", views.webhook_secret, name="webhook-secret"),
    path(f"{W}/<id:webhook_id>/test/", views.webhook_test, name="webhook-test"),
    path(f"{W}/<id:webhook_id>/update/", views.webhook_update, name="webhook-update"),
    path(f"{W}/<id:webhook_id>/delete/", views.webhook_delete, name="webhook-delete"),
    path(
        f"{W}/<id:webhook_id>/deliveries/<id:delivery_id>/redeliver/",
        views.webhook_redeliver,
        name="webhook-redeliver",
    ),
]

P = "projects/<int:project_id>/webhooks"

api_urlpatterns = [
    path(f"{P}/", apis.WebhookListApi.as_view(), name="api-webhook-list"),
    path(f"{P}/<int:webhook_id>/", apis.WebhookDetailApi.as_view(), name="api-webhook-detail"),
    path(f"{P}/<int:webhook_id>/secret/", apis.WebhookSecretApi.as_view(), name="api-webhook-secret"),
    path(f"{P}/<int:webhook_id>/test/", apis.WebhookTestApi.as_view(), name="api-webhook-test"),
    path(f"{P}/<int:webhook_id>/deliveries/", apis.WebhookDeliveryListApi.as_view(), name="api-webhook-delivery-list"),
    path(
        f"{P}/<int:webhook_id>/deliveries/<int:delivery_id>/",
        apis.WebhookDeliveryDetailApi.as_view(),
        name="api-webhook-delivery-detail",
    ),
    path(
        f"{P}/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver/",
        apis.WebhookRedeliverApi.as_view(),
        name="api-webhook-redeliver",
    ),
]
