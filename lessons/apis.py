"""REST API of lessons and meetings. Thin: parse, call one service or
selector, shape the answer. A meeting one may not see answers 404 exactly
like one that does not exist; every join goes through
lessons.selectors.join_verdict."""

import csv
import datetime
import io
from typing import Any, cast

from django.http import HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.network import client_ip
from common.api import BAD_REQUEST, NOT_AUTHENTICATED, refusal
from common.errors import ApplicationError
from lessons import schedule, selectors, services
from lessons.models import MeetingKind, Occurrence, ParticipantStatus
from lessons.serializers import (
    JoinStatusSerializer,
    LinkCreatedSerializer,
    LinkSerializer,
    MeetingSerializer,
    NotificationSerializer,
    OccurrenceSerializer,
    ParticipantSerializer,
    join_status_payload,
    link_payload,
    meeting_payload,
    notification_payload,
    occurrence_payload,
    participant_payload,
)
from lessons.texts import kind_label

NOT_FOUND = refusal("No such meeting, or one the user may not see: both answer alike (code not_found).")
FORBIDDEN = refusal("A rule refuses it; `code` names the rule (not_host, removed, safe_mode, guests_not_allowed…).")
CONFLICT = refusal("Not now: not_open (with opens_at), cancelled, already_over.")
GONE = refusal("The link was revoked or has expired (link_revoked, link_expired), or the meeting was cancelled.")
RATE_LIMITED = refusal("Too many wrong links from this address; the Retry-After header says when to try again.")
LINK_NOT_FOUND = refusal("No such link (code link_not_found).")
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="text/csv; charset=utf-8, with a header row.")
TAGS = ["lessons"]


def user_of(request: Request) -> User:
    return cast(User, request.user)


def signed_in_user(request: Request) -> User | None:
    user = request.user
    return cast(User, user) if user is not None and user.is_authenticated else None


class SignedInApi(APIView):
    permission_classes = [IsAuthenticated]


def _ids(value: Any) -> tuple[int, ...]:
    return tuple(int(item) for item in value or ())


class MeetingFieldsSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=500)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    starts_at = serializers.CharField(
        max_length=40,
        help_text=(
            "The first sitting: YYYY-MM-DDTHH:MM is the organisation's wall-clock time; an ISO 8601 time with an "
            "offset is taken as that instant."
        ),
    )
    duration_minutes = serializers.IntegerField(help_text="5 to 480.")
    repeats_weekly = serializers.BooleanField(required=False, default=False)
    repeat_until = serializers.DateField(
        required=False, allow_null=True, help_text="The last date of a weekly series (local, inclusive)."
    )
    student_group_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=50,
        help_text="Classes whose students come.",
    )
    guardian_group_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=50,
        help_text="Classes whose parents come.",
    )
    invite_staff = serializers.BooleanField(required=False, default=False, help_text="The organisation's staff.")
    user_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=300, help_text="Single people."
    )
    lobby_for_guests = serializers.BooleanField(required=False, default=True)
    lobby_for_everyone = serializers.BooleanField(required=False, default=False)
    is_recording_enabled = serializers.BooleanField(required=False, default=False)


AUDIENCE_FIELDS = ("student_group_ids", "guardian_group_ids", "invite_staff", "user_ids")


def detail_response(*, user: User, meeting_id: int, status_code: int = status.HTTP_200_OK) -> Response:
    meeting, role = selectors.meeting_get(user=user, meeting_id=meeting_id)
    payload = meeting_payload(meeting, role=role, occurrences=selectors.occurrences_upcoming(meeting=meeting))
    return Response(MeetingSerializer(payload).data, status=status_code)


# --- Meetings ----------------------------------------------------------------------------------------------------


class MeetingPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class MeetingListCreateApi(SignedInApi):
    @extend_schema_serializer(component_name="MeetingCreate")
    class InputSerializer(MeetingFieldsSerializer):
        organisation = serializers.IntegerField(help_text="Where it takes place; its time zone is used.")
        kind = serializers.ChoiceField(choices=MeetingKind.choices)

    @extend_schema(
        operation_id="meetings_list",
        tags=TAGS,
        summary="Meetings the user hosts or is invited to, newest first",
        responses={200: MeetingSerializer(many=True), 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        user = user_of(request)
        paginator = MeetingPagination()
        page = paginator.paginate_queryset(selectors.meetings_of_user(user=user), request, view=self) or []
        items = [
            meeting_payload(meeting, role=role) for meeting, role in selectors.meeting_roles(user=user, meetings=page)
        ]
        return paginator.get_paginated_response(MeetingSerializer(items, many=True).data)

    @extend_schema(
        operation_id="meetings_create",
        tags=TAGS,
        summary="Schedule a lesson, parent meeting, staff meeting or consultation",
        description=(
            "Verified educators and the organisation's administrators only (403 not_verified). The invitees: "
            "students of classes, parents of classes, the staff, single people; a child in safe mode only by the "
            'staff of their school (403 contact_not_allowed). Every invitee gets an "invited" notification.'
        ),
        request=InputSerializer,
        responses={
            201: MeetingSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: refusal("organisation_not_found, group_not_found, user_not_found."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        meeting = services.meeting_create(
            actor=user_of(request),
            organisation_id=data["organisation"],
            kind=data["kind"],
            title=data["title"],
            description=data.get("description", ""),
            starts_at=data["starts_at"],
            duration_minutes=data["duration_minutes"],
            repeats_weekly=data["repeats_weekly"],
            repeat_until=data.get("repeat_until"),
            audience=services.AudienceSpec(
                student_group_ids=_ids(data.get("student_group_ids")),
                guardian_group_ids=_ids(data.get("guardian_group_ids")),
                invite_staff=data["invite_staff"],
                user_ids=_ids(data.get("user_ids")),
            ),
            lobby_for_guests=data["lobby_for_guests"],
            lobby_for_everyone=data["lobby_for_everyone"],
            is_recording_enabled=data["is_recording_enabled"],
        )
        return detail_response(user=user_of(request), meeting_id=meeting.pk, status_code=status.HTTP_201_CREATED)


class MeetingDetailApi(SignedInApi):
    @extend_schema_serializer(component_name="MeetingUpdate")
    class InputSerializer(MeetingFieldsSerializer):
        pass

    @extend_schema(
        operation_id="meetings_retrieve",
        tags=TAGS,
        summary="A meeting with its next sittings",
        responses={200: MeetingSerializer, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, meeting_id: int) -> Response:
        return detail_response(user=user_of(request), meeting_id=meeting_id)

    @extend_schema(
        operation_id="meetings_update",
        tags=TAGS,
        summary="Change a meeting (the host or the organisation's administrators)",
        description=(
            "Only the fields sent change. Any of the audience fields replaces the invitation (the others keep "
            "their values). A new time reschedules the sittings that have not started. Invitees are told of "
            "changes of title, description, time and recording."
        ),
        request=InputSerializer,
        responses={
            200: MeetingSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def patch(self, request: Request, meeting_id: int) -> Response:
        user = user_of(request)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = {key: value for key, value in serializer.validated_data.items() if key in request.data}
        changes: dict[str, Any] = {key: value for key, value in data.items() if key not in AUDIENCE_FIELDS}
        if any(key in data for key in AUDIENCE_FIELDS):
            meeting = selectors.meeting_manage_get(user=user, meeting_id=meeting_id)
            current = selectors.meeting_audience_summary(meeting=meeting)
            current.update({key: data[key] for key in AUDIENCE_FIELDS if key in data})
            changes["audience"] = services.AudienceSpec(
                student_group_ids=_ids(current["student_group_ids"]),
                guardian_group_ids=_ids(current["guardian_group_ids"]),
                invite_staff=bool(current["invite_staff"]),
                user_ids=_ids(current["user_ids"]),
            )
        services.meeting_update(actor=user, meeting_id=meeting_id, **changes)
        return detail_response(user=user, meeting_id=meeting_id)


class MeetingCancelApi(SignedInApi):
    @extend_schema_serializer(component_name="MeetingCancel")
    class InputSerializer(serializers.Serializer):
        occurrence = serializers.IntegerField(
            required=False, allow_null=True, help_text="One sitting of a series; without it the whole meeting."
        )

    @extend_schema(
        operation_id="meetings_cancel",
        tags=TAGS,
        summary="Cancel a meeting or one sitting (the host or the organisation's administrators)",
        description="Every invitee is told; no reminders follow. Cancelling again changes nothing.",
        request=InputSerializer,
        responses={200: MeetingSerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, meeting_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.meeting_cancel(
            actor=user_of(request), meeting_id=meeting_id, occurrence_id=serializer.validated_data.get("occurrence")
        )
        return detail_response(user=user_of(request), meeting_id=meeting_id)


# --- Join links --------------------------------------------------------------------------------------------------


class MeetingLinksApi(SignedInApi):
    @extend_schema_serializer(component_name="MeetingLinkCreate")
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(  # type: ignore[assignment]
            max_length=200, required=False, allow_blank=True, help_text="For whom, e.g. the parent's name."
        )

    @extend_schema(
        operation_id="meetings_links_list",
        tags=TAGS,
        summary="The meeting's guest links (the host)",
        responses={200: LinkSerializer(many=True), 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, meeting_id: int) -> Response:
        meeting = selectors.meeting_manage_get(user=user_of(request), meeting_id=meeting_id)
        now = timezone.now()
        links = [link_payload(link, now=now) for link in selectors.join_links_of_meeting(meeting=meeting)]
        return Response(LinkSerializer(links, many=True).data)

    @extend_schema(
        operation_id="meetings_links_create",
        tags=TAGS,
        summary="A personal link for one guest without an account",
        description=(
            "The token (256 random bits) is in this answer only. The first guest who uses it gives their name and "
            "the link stays theirs; if the host removes them, it no longer works. Not for meetings with students "
            "(403 guests_not_allowed)."
        ),
        request=InputSerializer,
        responses={
            201: LinkCreatedSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def post(self, request: Request, meeting_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        link, token = services.join_link_create(
            actor=user_of(request), meeting_id=meeting_id, label=serializer.validated_data.get("label", "")
        )
        payload = {
            **link_payload(link, now=timezone.now()),
            "token": token,
            "url": request.build_absolute_uri(reverse("lessons:guest_join", args=[token])),
        }
        return Response(LinkCreatedSerializer(payload).data, status=status.HTTP_201_CREATED)


class MeetingLinkRevokeApi(SignedInApi):
    @extend_schema(
        operation_id="meetings_links_revoke",
        tags=TAGS,
        summary="Revoke a guest link: it answers 410 from now on and its guest leaves the call",
        responses={204: None, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def delete(self, request: Request, meeting_id: int, link_id: int) -> Response:
        services.join_link_revoke(actor=user_of(request), meeting_id=meeting_id, link_id=link_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Joining -----------------------------------------------------------------------------------------------------


def _raise_unless_only_early(verdict: selectors.JoinVerdict) -> None:
    """A status read answers 200 while the meeting is merely not open yet;
    every other refusal is raised with its own status."""
    if not verdict.is_allowed and verdict.code != "not_open":
        raise verdict.refusal()


class MeetingJoinApi(SignedInApi):
    @extend_schema(
        operation_id="meetings_join_status",
        tags=TAGS,
        summary="May I join now, and where am I (lobby or admitted)?",
        description="Poll this while waiting in the lobby. 200 with may_join false and opens_at when it is too early.",
        responses={
            200: JoinStatusSerializer,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
            410: GONE,
        },
    )
    def get(self, request: Request, meeting_id: int) -> Response:
        user = user_of(request)
        meeting = selectors.meeting_get(user=user, meeting_id=meeting_id)[0]
        verdict = selectors.join_verdict(meeting=meeting, user=user)
        _raise_unless_only_early(verdict)
        return Response(JoinStatusSerializer(join_status_payload(verdict, verdict.participant)).data)

    @extend_schema(
        operation_id="meetings_join",
        tags=TAGS,
        summary="Join the current sitting: admitted at once or waiting in the lobby",
        description=(
            "Opens 15 minutes before the start (30 for the host) and closes 30 minutes after the end. Refusals: "
            "404 not_found, 403 removed (the host removed you from this sitting) or safe_mode, 409 not_open "
            "(with opens_at), 410 cancelled."
        ),
        request=None,
        responses={
            200: JoinStatusSerializer,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
            410: GONE,
        },
    )
    def post(self, request: Request, meeting_id: int) -> Response:
        user = user_of(request)
        participant = services.meeting_join(user=user, meeting_id=meeting_id)
        meeting = selectors.meeting_get(user=user, meeting_id=meeting_id)[0]
        verdict = selectors.join_verdict(meeting=meeting, user=user)
        return Response(JoinStatusSerializer(join_status_payload(verdict, participant)).data)


class GuestJoinApi(APIView):
    """Anyone holding a personal link; a signed-in person is checked too (a
    child in safe mode never comes in as a guest)."""

    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="MeetingGuestJoin")
    class InputSerializer(serializers.Serializer):
        display_name = serializers.CharField(max_length=200, help_text="How the host will see you (1-80 characters).")

    @extend_schema(
        operation_id="join_link_status",
        tags=TAGS,
        summary="What a guest link opens, and the guest's place (lobby or admitted)",
        description=(
            "No sign-in. Unknown token: 404 link_not_found (wrong tokens are limited per IP address: 429). Revoked "
            "or expired link, cancelled meeting: 410. Removed guest: 403 removed. Too early: 200 with may_join "
            "false and opens_at."
        ),
        auth=[],
        responses={200: JoinStatusSerializer, 403: FORBIDDEN, 404: LINK_NOT_FOUND, 410: GONE, 429: RATE_LIMITED},
    )
    def get(self, request: Request, token: str) -> Response:
        link = services.join_link_find(token=token, ip=client_ip(request))
        verdict = selectors.join_verdict(meeting=link.meeting, link=link, user=signed_in_user(request))
        _raise_unless_only_early(verdict)
        return Response(JoinStatusSerializer(join_status_payload(verdict, verdict.participant)).data)

    @extend_schema(
        operation_id="join_link_enter",
        tags=TAGS,
        summary="Come in as a guest: into the lobby (or straight in when the host turned the guest lobby off)",
        description=(
            "The first name given stays with the link. Coming again with the same link returns the same "
            "participant. Refusals as for GET, plus 409 not_open."
        ),
        auth=[],
        request=InputSerializer,
        responses={
            200: JoinStatusSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: LINK_NOT_FOUND,
            409: CONFLICT,
            410: GONE,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request, token: str) -> Response:
        ip = client_ip(request)
        services.join_link_find(token=token, ip=ip)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = signed_in_user(request)
        participant = services.guest_join(
            token=token, display_name=serializer.validated_data["display_name"], ip=ip, user=user
        )
        link = services.join_link_find(token=token, ip=ip)
        verdict = selectors.join_verdict(meeting=link.meeting, link=link, user=user)
        return Response(JoinStatusSerializer(join_status_payload(verdict, participant)).data)


# --- Lobby and participants ----------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="MeetingLobby")
class LobbySerializer(serializers.Serializer):
    occurrence = OccurrenceSerializer(allow_null=True, help_text="The sitting open now; null between sittings.")
    participants = ParticipantSerializer(many=True)


def _occurrence_participants(*, meeting: Any, statuses: list[str] | None) -> dict[str, Any]:
    occurrence = selectors.lobby_occurrence(meeting=meeting)
    participants = selectors.participants_of_occurrence(occurrence=occurrence, statuses=statuses) if occurrence else []
    return {
        "occurrence": occurrence_payload(occurrence),
        "participants": [participant_payload(participant) for participant in participants],
    }


class LobbyApi(SignedInApi):
    @extend_schema(
        operation_id="meetings_lobby",
        tags=TAGS,
        summary="Who is waiting in the lobby of the current sitting (the host)",
        responses={200: LobbySerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, meeting_id: int) -> Response:
        meeting = selectors.meeting_manage_get(user=user_of(request), meeting_id=meeting_id)
        return Response(
            LobbySerializer(_occurrence_participants(meeting=meeting, statuses=[ParticipantStatus.WAITING])).data
        )


class LobbyDecisionApi(SignedInApi):
    admit = True

    def post(self, request: Request, meeting_id: int, participant_id: int) -> Response:
        participant = services.lobby_decide(
            actor=user_of(request), meeting_id=meeting_id, participant_id=participant_id, admit=self.admit
        )
        return Response(ParticipantSerializer(participant_payload(participant)).data)


class LobbyAdmitApi(LobbyDecisionApi):
    admit = True

    @extend_schema(
        operation_id="meetings_lobby_admit",
        tags=TAGS,
        summary="Let someone in from the lobby (the host)",
        request=None,
        responses={200: ParticipantSerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, meeting_id: int, participant_id: int) -> Response:
        return super().post(request, meeting_id, participant_id)


class LobbyDenyApi(LobbyDecisionApi):
    admit = False

    @extend_schema(
        operation_id="meetings_lobby_deny",
        tags=TAGS,
        summary="Do not let someone in (they may ask again; remove them to keep them out)",
        request=None,
        responses={200: ParticipantSerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, meeting_id: int, participant_id: int) -> Response:
        return super().post(request, meeting_id, participant_id)


class LobbyAdmitAllApi(SignedInApi):
    @extend_schema_serializer(component_name="MeetingLobbyAdmitted")
    class OutputSerializer(serializers.Serializer):
        admitted = serializers.IntegerField()

    @extend_schema(
        operation_id="meetings_lobby_admit_all",
        tags=TAGS,
        summary="Let everyone waiting in (the host)",
        request=None,
        responses={200: OutputSerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, meeting_id: int) -> Response:
        admitted = services.lobby_admit_all(actor=user_of(request), meeting_id=meeting_id)
        return Response(self.OutputSerializer({"admitted": admitted}).data)


class ParticipantListApi(SignedInApi):
    @extend_schema(
        operation_id="meetings_participants",
        tags=TAGS,
        summary="Everyone who asked to join the current sitting, with their status (the host)",
        responses={200: LobbySerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, meeting_id: int) -> Response:
        meeting = selectors.meeting_manage_get(user=user_of(request), meeting_id=meeting_id)
        return Response(LobbySerializer(_occurrence_participants(meeting=meeting, statuses=None)).data)


class ParticipantRemoveApi(SignedInApi):
    @extend_schema(
        operation_id="meetings_participants_remove",
        tags=TAGS,
        summary="Remove someone: they cannot come back to this sitting; a guest's link stops working",
        request=None,
        responses={
            200: ParticipantSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, meeting_id: int, participant_id: int) -> Response:
        participant = services.participant_remove(
            actor=user_of(request), meeting_id=meeting_id, participant_id=participant_id
        )
        return Response(ParticipantSerializer(participant_payload(participant)).data)


# --- Calendar, notifications, reminders ------------------------------------------------------------------------------


@extend_schema_serializer(component_name="CalendarEntry")
class CalendarEntrySerializer(serializers.Serializer):
    occurrence = OccurrenceSerializer()
    meeting = serializers.DictField(
        help_text="id, kind, kind_label, title, organisation (short name), host (name or null)."
    )
    role = serializers.CharField()
    local_starts_at = serializers.CharField(help_text="In the calendar's time zone, YYYY-MM-DDTHH:MM.")
    local_ends_at = serializers.CharField()
    is_cancelled = serializers.BooleanField()


@extend_schema_serializer(component_name="CalendarDay")
class CalendarDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    entries = CalendarEntrySerializer(many=True)


@extend_schema_serializer(component_name="CalendarWeek")
class CalendarWeekSerializer(serializers.Serializer):
    week = serializers.CharField(help_text="ISO week, e.g. 2025-W41.")
    time_zone = serializers.CharField()
    days = CalendarDaySerializer(many=True, help_text="Monday to Sunday.")
    previous_week = serializers.CharField()
    next_week = serializers.CharField()
    may_schedule_in = serializers.ListField(
        child=serializers.DictField(), help_text="Organisations where the user may schedule: id, short_name, time_zone."
    )


def calendar_payload(*, user: User, week: selectors.CalendarWeek) -> dict[str, Any]:
    days = []
    for day in week.days:
        entries = []
        for entry in day.entries:
            meeting = entry.meeting
            entries.append(
                {
                    "occurrence": occurrence_payload(entry.occurrence),
                    "meeting": {
                        "id": meeting.pk,
                        "kind": meeting.kind,
                        "kind_label": kind_label(meeting.kind),
                        "title": meeting.title,
                        "organisation": meeting.organisation.short_name,
                        "host": str(meeting.host.display_name) if meeting.host else None,
                    },
                    "role": entry.role,
                    "local_starts_at": entry.starts_at.replace(tzinfo=None).isoformat(timespec="minutes"),
                    "local_ends_at": entry.ends_at.replace(tzinfo=None).isoformat(timespec="minutes"),
                    "is_cancelled": entry.is_cancelled,
                }
            )
        days.append({"date": day.date, "entries": entries})
    return {
        "week": week.week,
        "time_zone": week.time_zone,
        "days": days,
        "previous_week": week.previous_week,
        "next_week": week.next_week,
        "may_schedule_in": [
            {
                "id": organisation.pk,
                "short_name": organisation.short_name,
                "time_zone": organisation.effective_time_zone,
            }
            for organisation in selectors.organisations_user_may_schedule_in(user=user)
        ],
    }


class CalendarApi(SignedInApi):
    @extend_schema(
        operation_id="calendar_week",
        tags=TAGS,
        summary="The user's week: every sitting they host or are invited to, cancelled ones marked",
        parameters=[
            OpenApiParameter("week", str, description="ISO week YYYY-Www; the current week by default."),
        ],
        responses={200: CalendarWeekSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        user = user_of(request)
        time_zone = selectors.user_time_zone(user=user)
        week_name = request.query_params.get("week")
        if week_name:
            monday = schedule.iso_week_parse(week_name)
        else:
            monday = schedule.week_monday(schedule.utc_to_local(timezone.now(), time_zone).date())
        week = selectors.calendar_week(user=user, monday=monday, time_zone=time_zone)
        return Response(CalendarWeekSerializer(calendar_payload(user=user, week=week)).data)


class NotificationListApi(SignedInApi):
    pagination_class = MeetingPagination

    @extend_schema(
        operation_id="meeting_notifications_list",
        tags=TAGS,
        summary="The user's meeting notifications: invitations, changes, cancellations, reminders",
        parameters=[OpenApiParameter("unread", bool, description="Only the unread ones.")],
        responses={200: NotificationSerializer(many=True), 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        user = user_of(request)
        unread_only = request.query_params.get("unread") in {"1", "true", "yes"}
        paginator = MeetingPagination()
        page = paginator.paginate_queryset(
            selectors.notifications_of_user(user=user, unread_only=unread_only), request, view=self
        )
        time_zone = selectors.user_time_zone(user=user)
        items = [notification_payload(notification, time_zone=time_zone) for notification in page or []]
        return paginator.get_paginated_response(NotificationSerializer(items, many=True).data)


class NotificationReadApi(SignedInApi):
    @extend_schema_serializer(component_name="MeetingNotificationsRead")
    class InputSerializer(serializers.Serializer):
        ids = serializers.ListField(
            child=serializers.IntegerField(), required=False, max_length=500, help_text="Without it: all of them."
        )

    @extend_schema_serializer(component_name="MeetingNotificationsMarked")
    class OutputSerializer(serializers.Serializer):
        marked = serializers.IntegerField()

    @extend_schema(
        operation_id="meeting_notifications_read",
        tags=TAGS,
        summary="Mark meeting notifications read",
        request=InputSerializer,
        responses={200: OutputSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        marked = services.notifications_mark_read(
            user=user_of(request), notification_ids=serializer.validated_data.get("ids")
        )
        return Response(self.OutputSerializer({"marked": marked}).data)


class ReminderPreferenceApi(SignedInApi):
    @extend_schema_serializer(component_name="MeetingReminderPreference")
    class PreferenceSerializer(serializers.Serializer):
        by_sms = serializers.BooleanField(help_text="Reminders come in the portal always, and by SMS if true.")

    @extend_schema(
        operation_id="me_meeting_reminders",
        tags=TAGS,
        summary="How the user wants meeting reminders",
        responses={200: PreferenceSerializer, 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        return Response(
            self.PreferenceSerializer({"by_sms": selectors.reminder_preference_of(user=user_of(request))}).data
        )

    @extend_schema(
        operation_id="me_meeting_reminders_update",
        tags=TAGS,
        summary="Choose whether meeting reminders come by SMS too",
        request=PreferenceSerializer,
        responses={200: PreferenceSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED},
    )
    def put(self, request: Request) -> Response:
        serializer = self.PreferenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preference = services.reminder_preference_update(
            user=user_of(request), by_sms=serializer.validated_data["by_sms"]
        )
        return Response(self.PreferenceSerializer({"by_sms": preference.by_sms}).data)


# --- Attendance -----------------------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="AttendanceRow")
class AttendanceRowSerializer(serializers.Serializer):
    name = serializers.CharField()
    user_id = serializers.IntegerField(allow_null=True)
    role = serializers.CharField()
    is_guest = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["attended", "never_came", "waiting", "denied", "removed"])
    first_joined_at = serializers.DateTimeField(allow_null=True)
    last_left_at = serializers.DateTimeField(allow_null=True, help_text="Null while still in the call.")
    minutes = serializers.IntegerField()
    sessions = serializers.IntegerField()


@extend_schema_serializer(component_name="MeetingAttendance")
class AttendanceSerializer(serializers.Serializer):
    occurrence = OccurrenceSerializer()
    rows = AttendanceRowSerializer(many=True)
    invited = serializers.IntegerField()
    came = serializers.IntegerField()
    never_came = serializers.IntegerField()


def _occurrence_param(request: Request) -> int | None:
    value = request.query_params.get("occurrence")
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise ApplicationError(_("An occurrence is a number."), code="invalid", extra={"field": "occurrence"})
    return int(value)


def attendance_report(*, user: User, meeting_id: int, occurrence_id: int | None) -> tuple[Any, Occurrence, list]:
    meeting = selectors.meeting_manage_get(user=user, meeting_id=meeting_id)
    occurrence = selectors.occurrence_for_report(meeting=meeting, occurrence_id=occurrence_id)
    return meeting, occurrence, selectors.occurrence_attendance(occurrence=occurrence)


def attendance_csv(*, rows: list, time_zone: str, filename: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("Name"), _("Role"), _("Guest"), _("Status"), _("First joined"), _("Last left"), _("Minutes")])
    for row in rows:
        writer.writerow(
            [
                _csv_safe(row.name),
                row.role,
                _("yes") if row.is_guest else _("no"),
                row.status,
                _local(row.first_joined_at, time_zone),
                _local(row.last_left_at, time_zone),
                row.minutes,
            ]
        )
    return csv_response(buffer.getvalue(), filename=filename)


def csv_response(text: str, *, filename: str) -> HttpResponse:
    # A BOM so that spreadsheet programs read the Cyrillic as UTF-8.
    response = HttpResponse("\ufeff" + text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="' + filename + '"'
    return response


def _csv_safe(value: str) -> str:
    """A name is data, never a spreadsheet formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _local(moment: datetime.datetime | None, time_zone: str) -> str:
    if moment is None:
        return ""
    return schedule.utc_to_local(moment, time_zone).strftime("%Y-%m-%d %H:%M")


class AttendanceApi(SignedInApi):
    @extend_schema(
        operation_id="meetings_attendance",
        tags=TAGS,
        summary="Who came to a sitting and for how long, and who never came (the host)",
        parameters=[
            OpenApiParameter("occurrence", int, description="The sitting; the latest that started by default.")
        ],
        responses={200: AttendanceSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, meeting_id: int) -> Response:
        _meeting, occurrence, rows = attendance_report(
            user=user_of(request), meeting_id=meeting_id, occurrence_id=_occurrence_param(request)
        )
        payload = {
            "occurrence": occurrence_payload(occurrence),
            "rows": [
                {
                    "name": row.name,
                    "user_id": row.user.pk if row.user else None,
                    "role": row.role,
                    "is_guest": row.is_guest,
                    "status": row.status,
                    "first_joined_at": row.first_joined_at,
                    "last_left_at": row.last_left_at,
                    "minutes": row.minutes,
                    "sessions": row.sessions,
                }
                for row in rows
            ],
            "invited": sum(1 for row in rows if not row.is_guest),
            "came": sum(1 for row in rows if row.has_come),
            "never_came": sum(1 for row in rows if row.status == "never_came"),
        }
        return Response(AttendanceSerializer(payload).data)


class AttendanceCsvApi(SignedInApi):
    @extend_schema(
        operation_id="meetings_attendance_csv",
        tags=TAGS,
        summary="The attendance of a sitting as CSV (the host)",
        parameters=[
            OpenApiParameter("occurrence", int, description="The sitting; the latest that started by default.")
        ],
        responses={(200, "text/csv"): CSV_RESPONSE, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, meeting_id: int) -> HttpResponse:
        meeting, occurrence, rows = attendance_report(
            user=user_of(request), meeting_id=meeting_id, occurrence_id=_occurrence_param(request)
        )
        day = schedule.utc_to_local(occurrence.starts_at, meeting.time_zone).strftime("%Y-%m-%d")
        return attendance_csv(rows=rows, time_zone=meeting.time_zone, filename=f"attendance-{meeting.pk}-{day}.csv")


@extend_schema_serializer(component_name="GroupAttendanceStudent")
class GroupAttendanceStudentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    attended = serializers.IntegerField()
    missed = serializers.IntegerField()
    never_came = serializers.BooleanField()
    marks = serializers.ListField(child=serializers.BooleanField(), help_text="One per lesson, in order: came or not.")


@extend_schema_serializer(component_name="GroupAttendance")
class GroupAttendanceSerializer(serializers.Serializer):
    group = serializers.DictField(help_text="id, name.")
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    time_zone = serializers.CharField()
    lessons = serializers.ListField(child=serializers.DictField(), help_text="id, meeting, title, starts_at.")
    students = GroupAttendanceStudentSerializer(many=True)
    never_came = serializers.ListField(child=serializers.IntegerField(), help_text="Students who came to none.")


def _date_param(request: Request, name: str) -> datetime.date | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ApplicationError(_("A date looks like 2025-09-01."), code="invalid", extra={"field": name}) from None


def group_attendance_of(request: Request, group_id: int) -> selectors.GroupAttendance:
    group = selectors.study_group_attendance_get(user=user_of(request), group_id=group_id)
    today = schedule.utc_to_local(timezone.now(), group.organisation.effective_time_zone).date()
    default_from, default_to = selectors.term_default(today=today)
    date_from = _date_param(request, "from") or default_from
    date_to = _date_param(request, "to") or default_to
    if date_to < date_from or (date_to - date_from).days > 400:
        raise ApplicationError(_("Choose a term of at most a year."), code="invalid", extra={"field": "to"})
    return selectors.group_attendance(group=group, date_from=date_from, date_to=date_to)


GROUP_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (local); 1 September by default."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (local), inclusive; today by default."),
]


class GroupAttendanceApi(SignedInApi):
    @extend_schema(
        operation_id="study_groups_attendance",
        tags=TAGS,
        summary="A class's attendance of its lessons over a term, with who never came",
        description="For the class's teachers, its homeroom teacher and the school's administrators.",
        parameters=GROUP_PARAMETERS,
        responses={200: GroupAttendanceSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, group_id: int) -> Response:
        report = group_attendance_of(request, group_id)
        payload = {
            "group": {"id": report.group.pk, "name": report.group.name},
            "date_from": report.date_from,
            "date_to": report.date_to,
            "time_zone": report.time_zone,
            "lessons": [
                {
                    "id": lesson.pk,
                    "meeting": lesson.meeting_id,
                    "title": lesson.meeting.title,
                    "starts_at": lesson.starts_at.isoformat(),
                }
                for lesson in report.lessons
            ],
            "students": [
                {
                    "id": row.student.pk,
                    "display_name": str(row.student.display_name),
                    "attended": row.attended,
                    "missed": row.missed,
                    "never_came": row.never_came,
                    "marks": row.marks,
                }
                for row in report.rows
            ],
            "never_came": [student.pk for student in report.never_came],
        }
        return Response(GroupAttendanceSerializer(payload).data)


def group_attendance_csv(report: selectors.GroupAttendance) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            _("Student"),
            *(_local(lesson.starts_at, report.time_zone) for lesson in report.lessons),
            _("Attended"),
            _("Missed"),
        ]
    )
    for row in report.rows:
        writer.writerow(
            [
                _csv_safe(str(row.student.display_name)),
                *("+" if mark else "-" for mark in row.marks),
                row.attended,
                row.missed,
            ]
        )
    filename = f"attendance-group-{report.group.pk}-{report.date_from:%Y%m%d}-{report.date_to:%Y%m%d}.csv"
    return csv_response(buffer.getvalue(), filename=filename)


class GroupAttendanceCsvApi(SignedInApi):
    @extend_schema(
        operation_id="study_groups_attendance_csv",
        tags=TAGS,
        summary="A class's attendance over a term as CSV: + came, - did not",
        parameters=GROUP_PARAMETERS,
        responses={(200, "text/csv"): CSV_RESPONSE, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, group_id: int) -> HttpResponse:
        return group_attendance_csv(group_attendance_of(request, group_id))


urlpatterns = [
    path("meetings/", MeetingListCreateApi.as_view(), name="meetings-list"),
    path("meetings/<int:meeting_id>/", MeetingDetailApi.as_view(), name="meetings-detail"),
    path("meetings/<int:meeting_id>/cancel/", MeetingCancelApi.as_view(), name="meetings-cancel"),
    path("meetings/<int:meeting_id>/links/", MeetingLinksApi.as_view(), name="meetings-links"),
    path("meetings/<int:meeting_id>/links/<int:link_id>/", MeetingLinkRevokeApi.as_view(), name="meetings-link"),
    path("meetings/<int:meeting_id>/join/", MeetingJoinApi.as_view(), name="meetings-join"),
    path("meetings/<int:meeting_id>/lobby/", LobbyApi.as_view(), name="meetings-lobby"),
    path("meetings/<int:meeting_id>/lobby/admit-all/", LobbyAdmitAllApi.as_view(), name="meetings-lobby-admit-all"),
    path(
        "meetings/<int:meeting_id>/lobby/<int:participant_id>/admit/",
        LobbyAdmitApi.as_view(),
        name="meetings-lobby-admit",
    ),
    path(
        "meetings/<int:meeting_id>/lobby/<int:participant_id>/deny/",
        LobbyDenyApi.as_view(),
        name="meetings-lobby-deny",
    ),
    path("meetings/<int:meeting_id>/participants/", ParticipantListApi.as_view(), name="meetings-participants"),
    path(
        "meetings/<int:meeting_id>/participants/<int:participant_id>/remove/",
        ParticipantRemoveApi.as_view(),
        name="meetings-participants-remove",
    ),
    path("meetings/<int:meeting_id>/attendance/", AttendanceApi.as_view(), name="meetings-attendance"),
    path("meetings/<int:meeting_id>/attendance.csv", AttendanceCsvApi.as_view(), name="meetings-attendance-csv"),
    path("study-groups/<int:group_id>/attendance/", GroupAttendanceApi.as_view(), name="study-groups-attendance"),
    path(
        "study-groups/<int:group_id>/attendance.csv",
        GroupAttendanceCsvApi.as_view(),
        name="study-groups-attendance-csv",
    ),
    path("calendar/", CalendarApi.as_view(), name="calendar"),
    path("meeting-notifications/", NotificationListApi.as_view(), name="meeting-notifications"),
    path("meeting-notifications/read/", NotificationReadApi.as_view(), name="meeting-notifications-read"),
    path("me/meeting-reminders/", ReminderPreferenceApi.as_view(), name="me-meeting-reminders"),
    path("join/<str:token>/", GuestJoinApi.as_view(), name="join-link"),
]
