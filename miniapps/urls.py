"""HTML pages of the miniapps app: the showcase, launching a mini-app and the diary."""

from django.urls import path

from miniapps import views

app_name = "miniapps"
urlpatterns = [
    path("education/", views.showcase_view, name="showcase"),
    path("apps/<slug:slug>/", views.launch_view, name="launch"),
    path("diary/", views.diary_home_view, name="diary"),
    path("diary/students/<int:student_id>/", views.diary_student_view, name="diary_student"),
    path("diary/groups/<int:group_id>/", views.diary_group_view, name="diary_group"),
    path("diary/groups/<int:group_id>/timetable/", views.timetable_add_view, name="timetable_add"),
    path(
        "diary/groups/<int:group_id>/timetable/<int:entry_id>/delete/",
        views.timetable_delete_view,
        name="timetable_delete",
    ),
    path("diary/groups/<int:group_id>/homework/", views.homework_add_view, name="homework_add"),
    path(
        "diary/groups/<int:group_id>/homework/<int:homework_id>/delete/",
        views.homework_delete_view,
        name="homework_delete",
    ),
    path("diary/homework/<int:homework_id>/attachment/", views.homework_attachment_view, name="homework_attachment"),
    path("diary/groups/<int:group_id>/marks/", views.mark_add_view, name="mark_add"),
    path("diary/groups/<int:group_id>/marks/<int:mark_id>/delete/", views.mark_delete_view, name="mark_delete"),
]
