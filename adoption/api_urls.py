"""REST API of the adoption app, under /api/v1/."""

from django.urls import path

from adoption import apis

urlpatterns = [
    path("adoption/dashboard/", apis.DashboardApi.as_view(), name="api-adoption-dashboard"),
    path("adoption/roadmaps/<str:region_code>/", apis.RoadmapApi.as_view(), name="api-adoption-roadmap"),
    path("course/", apis.CourseApi.as_view(), name="api-course"),
    path("course/steps/<int:step>/", apis.CourseStepApi.as_view(), name="api-course-step"),
]
