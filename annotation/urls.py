"""Browser pages. Each area adds its routes in its own block."""

from django.urls import path

from . import views, views_review

urlpatterns = [
    path("", views.project_list, name="project-list"),
]

# --- Review, quality and snapshots (views_review.py) ---
urlpatterns += [
    path("projects/<int:project_id>/review/", views_review.review_queue, name="review-queue"),
    path("projects/<int:project_id>/review/<int:task_id>/decide/", views_review.review_decide, name="review-decide"),
    path("projects/<int:project_id>/items/<int:item_id>/history/", views_review.item_history, name="item-history"),
]
