"""HTML pages of the adoption app."""

from django.urls import path

from adoption import views

app_name = "adoption"
urlpatterns = [
    path("adoption/", views.dashboard_view, name="dashboard"),
    path("adoption/export.csv", views.dashboard_csv_view, name="dashboard_csv"),
    path("adoption/roadmaps/<str:region_code>/", views.roadmap_view, name="roadmap"),
    path("course/", views.course_view, name="course"),
    path("course/<int:step>/", views.course_step_view, name="course_step"),
]
