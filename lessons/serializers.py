"""What the lessons API answers, built once here for REST (the HTML pages
read the same selectors). The payload functions make plain dicts; the
serializers describe them for OpenAPI and keep the answer to its fields."""

import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from accounts.models import User
from lessons import schedule, selectors
from lessons.models import (
    JoinLink,
    Meeting,
    MeetingKind,
    MeetingNotification,
    NotificationKind,
    Occurrence,
    Participant,
    ParticipantRole,
    ParticipantStatus,
    Recording,
    RecordingStatus,
)
from lessons.texts import notification_text


def person_payload(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "display_name": str(user.display_name),
        "is_verified_educator": user.is_verified_educator,
        "is_name_flagged": user.is_name_flagged,
    }


def occurrence_payload(occurrence: Occurrence | None) -> dict[str, Any] | None:
    if occurrence is None:
        return None
    return {
        "id": occurrence.pk,
        "sequence": occurrence.sequence,
        "starts_at": occurrence.starts_at,
        "ends_at": occurrence.ends_at,
        "is_cancelled": occurrence.cancelled_at is not None,
    }


def local_iso(moment: datetime.datetime, time_zone: str) -> str:
    return schedule.utc_to_local(moment, time_zone).replace(tzinfo=None).isoformat(timespec="minutes")


def meeting_payload(meeting: Meeting, *, role: str, occurrences: list[Occurrence] | None = None) -> dict[str, Any]:
    """A meeting as its host or an invitee sees it; who exactly is invited
    is shown to the host only."""
    return {
        "id": meeting.pk,
        "kind": meeting.kind,
        "title": meeting.title,
        "description": meeting.description,
        "organisation": {"id": meeting.organisation_id, "short_name": meeting.organisation.short_name},
        "host": person_payload(meeting.host),
        "time_zone": meeting.time_zone,
        "starts_at": meeting.starts_at,
        "local_starts_at": local_iso(meeting.starts_at, meeting.time_zone),
        "duration_minutes": meeting.duration_minutes,
        "repeats_weekly": meeting.repeats_weekly,
        "repeat_until": meeting.repeat_until,
        "lobby_for_guests": meeting.lobby_for_guests,
        "lobby_for_everyone": meeting.lobby_for_everyone,
        "is_recording_enabled": meeting.is_recording_enabled,
        "cancelled_at": meeting.cancelled_at,
        "revision": meeting.revision,
        "role": role,
        "audience": selectors.meeting_audience_summary(meeting=meeting) if role == ParticipantRole.HOST else None,
        "upcoming": [occurrence_payload(occurrence) for occurrence in (occurrences or [])],
    }


def participant_payload(participant: Participant | None) -> dict[str, Any] | None:
    if participant is None:
        return None
    return {
        "id": participant.pk,
        "display_name": participant.display_name,
        "user_id": participant.user_id,
        "role": participant.role,
        "status": participant.status,
        "is_guest": participant.join_link_id is not None,
        "requested_at": participant.requested_at,
    }


def join_status_payload(verdict: selectors.JoinVerdict, participant: Participant | None) -> dict[str, Any]:
    meeting = verdict.meeting
    return {
        "may_join": verdict.is_allowed,
        "code": verdict.code,
        "detail": verdict.message,
        "role": verdict.role,
        "must_wait": verdict.must_wait,
        "opens_at": verdict.opens_at,
        "meeting": {
            "id": meeting.pk,
            "kind": meeting.kind,
            "title": meeting.title,
            "organisation": meeting.organisation.short_name,
            "host": str(meeting.host.display_name) if meeting.host else None,
            "time_zone": meeting.time_zone,
            "is_recording_enabled": meeting.is_recording_enabled,
        },
        "occurrence": occurrence_payload(verdict.occurrence),
        "participant": participant_payload(participant),
        "is_being_recorded": verdict.occurrence is not None
        and Recording.objects.filter(occurrence=verdict.occurrence, status=RecordingStatus.RECORDING).exists(),
    }


def link_payload(link: JoinLink, *, now: datetime.datetime) -> dict[str, Any]:
    if link.revoked_at is not None:
        state = "revoked"
    elif link.removed_at is not None:
        state = "guest_removed"
    elif link.expires_at <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "id": link.pk,
        "label": link.label,
        "guest_name": link.guest_name,
        "state": state,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "revoked_at": link.revoked_at,
    }


def notification_payload(notification: MeetingNotification, *, time_zone: str) -> dict[str, Any]:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "text": notification_text(notification, time_zone=time_zone),
        "meeting": {
            "id": notification.meeting_id,
            "title": notification.meeting.title,
            "kind": notification.meeting.kind,
        },
        "occurrence": occurrence_payload(notification.occurrence),
        "created_at": notification.created_at,
        "read_at": notification.read_at,
    }


# --- Serializers (OpenAPI and the shape of every answer) ---------------------------------------------------------


@extend_schema_serializer(component_name="MeetingPerson")
class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    is_verified_educator = serializers.BooleanField()
    is_name_flagged = serializers.BooleanField()


@extend_schema_serializer(component_name="MeetingOccurrence")
class OccurrenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sequence = serializers.IntegerField(help_text="0 for the first sitting of a series.")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    is_cancelled = serializers.BooleanField()


@extend_schema_serializer(component_name="MeetingOrganisation")
class MeetingOrganisationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    short_name = serializers.CharField()


@extend_schema_serializer(component_name="MeetingAudience")
class AudienceSerializer(serializers.Serializer):
    student_group_ids = serializers.ListField(child=serializers.IntegerField())
    guardian_group_ids = serializers.ListField(child=serializers.IntegerField())
    invite_staff = serializers.BooleanField()
    user_ids = serializers.ListField(child=serializers.IntegerField())


@extend_schema_serializer(component_name="Meeting")
class MeetingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=MeetingKind.choices)
    title = serializers.CharField()
    description = serializers.CharField()
    organisation = MeetingOrganisationSerializer()
    host = PersonSerializer(allow_null=True)
    time_zone = serializers.CharField(help_text="The zone of the wall-clock times, e.g. Asia/Yekaterinburg.")
    starts_at = serializers.DateTimeField(help_text="The first sitting, ISO 8601 with offset.")
    local_starts_at = serializers.CharField(help_text="The first sitting in `time_zone`, YYYY-MM-DDTHH:MM.")
    duration_minutes = serializers.IntegerField()
    repeats_weekly = serializers.BooleanField()
    repeat_until = serializers.DateField(allow_null=True)
    lobby_for_guests = serializers.BooleanField()
    lobby_for_everyone = serializers.BooleanField()
    is_recording_enabled = serializers.BooleanField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
    revision = serializers.IntegerField(help_text="Grows with every change the invitees are told about.")
    role = serializers.ChoiceField(
        choices=ParticipantRole.choices,
        help_text="host: the host or an administrator of the organisation; member: an invitee.",
    )
    audience = AudienceSerializer(allow_null=True, help_text="Who is invited; for the host only.")
    upcoming = OccurrenceSerializer(many=True, help_text="The next sittings (at most 10).")


@extend_schema_serializer(component_name="MeetingParticipant")
class ParticipantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    user_id = serializers.IntegerField(allow_null=True)
    role = serializers.ChoiceField(choices=ParticipantRole.choices)
    status = serializers.ChoiceField(choices=ParticipantStatus.choices)
    is_guest = serializers.BooleanField()
    requested_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="MeetingJoinSummary")
class JoinMeetingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=MeetingKind.choices)
    title = serializers.CharField()
    organisation = serializers.CharField()
    host = serializers.CharField(allow_null=True)
    time_zone = serializers.CharField()
    is_recording_enabled = serializers.BooleanField(
        help_text="The meeting is recorded: tell the person before they join."
    )


@extend_schema_serializer(component_name="MeetingJoinStatus")
class JoinStatusSerializer(serializers.Serializer):
    may_join = serializers.BooleanField()
    code = serializers.CharField(help_text="ok, or why not now: not_open.")
    detail = serializers.CharField(allow_blank=True)
    role = serializers.CharField(allow_null=True)
    must_wait = serializers.BooleanField(help_text="Joining puts one in the lobby until the host admits.")
    opens_at = serializers.DateTimeField(allow_null=True)
    meeting = JoinMeetingSerializer()
    occurrence = OccurrenceSerializer(allow_null=True)
    participant = ParticipantSerializer(allow_null=True, help_text="One's own place: waiting, admitted, denied.")
    is_being_recorded = serializers.BooleanField(
        help_text="A host is recording the call of this sitting now (tell those waiting in the lobby)."
    )


@extend_schema_serializer(component_name="MeetingLink")
class LinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    # The metaclass takes declared fields off the class, so "label" does
    # not shadow Field.label at run time; mypy cannot know that.
    label = serializers.CharField(allow_blank=True)  # type: ignore[assignment]
    guest_name = serializers.CharField(allow_blank=True)
    state = serializers.ChoiceField(choices=["active", "revoked", "expired", "guest_removed"])
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="MeetingLinkCreated")
class LinkCreatedSerializer(LinkSerializer):
    token = serializers.CharField(help_text="Shown only now; the server keeps its SHA-256 only.")
    url = serializers.CharField(help_text="The page a guest opens: /join/<token>/.")


@extend_schema_serializer(component_name="MeetingNotificationItem")
class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    text = serializers.CharField()
    meeting = serializers.DictField()
    occurrence = OccurrenceSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)
