"""Browser pages. Each area adds its routes in its own block."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.project_list, name="project-list"),
]
