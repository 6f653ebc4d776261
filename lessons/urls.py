"""HTML pages of lessons and meetings, and the guests' link page."""

from django.urls import path

from lessons import views

app_name = "lessons"
urlpatterns = [
    path("lessons/", views.calendar_view, name="calendar"),
    path("lessons/new/", views.meeting_create_view, name="create"),
    path("lessons/reminders/", views.reminder_preference_view, name="reminders"),
    path("lessons/notifications/read/", views.notifications_read_view, name="notifications_read"),
    path("lessons/<int:meeting_id>/", views.meeting_detail_view, name="detail"),
    path("lessons/<int:meeting_id>/edit/", views.meeting_edit_view, name="edit"),
    path("lessons/<int:meeting_id>/cancel/", views.meeting_cancel_view, name="cancel"),
    path("lessons/<int:meeting_id>/join/", views.meeting_join_view, name="join"),
    path("lessons/<int:meeting_id>/links/", views.link_create_view, name="link_create"),
    path("lessons/<int:meeting_id>/links/<int:link_id>/revoke/", views.link_revoke_view, name="link_revoke"),
    path(
        "lessons/<int:meeting_id>/participants/<int:participant_id>/",
        views.participant_decide_view,
        name="participant_decide",
    ),
    path("lessons/<int:meeting_id>/lobby/admit-all/", views.lobby_admit_all_view, name="admit_all"),
    path("lessons/<int:meeting_id>/attendance/", views.attendance_view, name="attendance"),
    path("lessons/<int:meeting_id>/attendance.csv", views.attendance_csv_view, name="attendance_csv"),
    path("lessons/groups/<int:group_id>/attendance/", views.group_attendance_view, name="group_attendance"),
    path(
        "lessons/groups/<int:group_id>/attendance.csv",
        views.group_attendance_csv_view,
        name="group_attendance_csv",
    ),
    path("lessons/recordings/<int:recording_id>/file/", views.recording_file_view, name="recording_file"),
    path("join/<str:token>/", views.guest_join_view, name="guest_join"),
]
