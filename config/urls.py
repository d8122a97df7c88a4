from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/", include("annotation.api_urls")),
    path("api/", include("training.api_urls")),
    path("api/", include("training.api_urls_ratings")),
    path("api/", include("training.api_urls_rounds")),
    path("django-rq/", include("django_rq.urls")),
    path("", include("annotation.urls")),
    path("", include("training.urls")),
    path("", include("training.urls_ratings")),
    path("", include("training.urls_rounds")),
]
