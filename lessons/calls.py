"""The call of one occurrence as its signalling side (lessons.consumers)
drives it: coming in through the one rule, who is in the call now and with
what switched on, attendance, the host's controls and the chat kept with
the meeting. Writes and the reads that go with them are kept together here
because they are one small subject; who may be in a call at all stays
`lessons.selectors.join_verdict` / `participant_may_be_in_call`, asked again
by every function below that changes something.

The media server knows nothing of this: a participant is the media peer
`peer_id(participant_id)` in the room `room_id(occurrence_id)`.

Everyone else in the call hears of a change through the occurrence's group
(lessons.events), only after the transaction that made it commits, as one
of these events (the consumer writes their text to its browser as it is):

- "call.presence": {"action": "joined" | "updated" | "left", "participant": {...}}
- "call.state": {"state": {...}} — safe lesson, locked microphones, the floor
- "call.muted": {"participant": id, "kinds": [...]} — the host muted someone
- "call.message": {"message": {...}} — the chat of the call
- "call.ended": {"reason": "ended"} — the host ended it for everyone
"""

import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.ratelimit import rate_limit_hit
from lessons import events, selectors, services
from lessons.models import (
    CALL_MESSAGE_MAX_LENGTH,
    CallMessage,
    CallPresence,
    CallState,
    Occurrence,
    Participant,
    ParticipantRole,
    ParticipantStatus,
)

KINDS = ("audio", "video")
MESSAGES_SHOWN = 100
CLIENT_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,64}$")

CALL_PRESENCE = "call.presence"
CALL_STATE = "call.state"
CALL_MUTED = "call.muted"
CALL_MESSAGE = "call.message"
CALL_ENDED = "call.ended"
CALL_QUALITY = "call.quality"


def room_id(occurrence_id: int) -> str:
    """The media room of an occurrence's call."""
    return "occurrence-" + str(int(occurrence_id))


def peer_id(participant_id: int) -> str:
    """The media peer of a participant."""
    return "p" + str(int(participant_id))


def participant_id_of_peer(peer: Any) -> int | None:
    if isinstance(peer, str) and peer.startswith("p") and peer[1:].isascii() and peer[1:].isdigit():
        return int(peer[1:])
    return None


# --- Payloads ------------------------------------------------------------------------------------------------------


def presence_payload(presence: CallPresence) -> dict[str, Any]:
    participant = presence.participant
    return {
        "id": participant.pk,
        "peer": peer_id(participant.pk),
        "display_name": participant.display_name,
        "role": participant.role,
        "is_guest": participant.join_link_id is not None,
        "is_audio_muted": presence.is_audio_muted,
        "is_video_muted": presence.is_video_muted,
        "is_audio_only": presence.is_audio_only,
        "is_hand_raised": presence.hand_raised_at is not None,
        "hand_raised_at": presence.hand_raised_at.isoformat() if presence.hand_raised_at else None,
        "screen_mid": presence.screen_mid or None,
        "joined_at": presence.joined_at.isoformat(),
    }


def state_payload(state: CallState) -> dict[str, Any]:
    return {
        "is_safe_lesson": state.is_safe_lesson,
        "are_microphones_locked": state.are_microphones_locked,
        "floor": state.floor_participant_id,
        "is_ended": state.ended_at is not None,
    }


def message_payload(message: CallMessage) -> dict[str, Any]:
    return {
        "id": message.pk,
        "participant": message.participant_id,
        "author": message.author_name,
        "body": message.body,
        "client_id": message.client_id or None,
        "created_at": message.created_at.isoformat(),
    }


def lobby_payload(participant: Participant) -> dict[str, Any]:
    return {
        "id": participant.pk,
        "display_name": participant.display_name,
        "role": participant.role,
        "is_guest": participant.join_link_id is not None,
        "requested_at": participant.requested_at.isoformat(),
    }


def _publish(occurrence_id: int, event: dict[str, Any]) -> None:
    events.occurrence_event_publish(occurrence_id=occurrence_id, event=event)


def _presence_publish(presence: CallPresence, action: str) -> None:
    _publish(
        presence.occurrence_id, {"type": CALL_PRESENCE, "action": action, "participant": presence_payload(presence)}
    )


def _left_publish(*, occurrence_id: int, participant_id: int, reason: str) -> None:
    _publish(
        occurrence_id,
        {
            "type": CALL_PRESENCE,
            "action": "left",
            "reason": reason,
            "participant": {"id": participant_id, "peer": peer_id(participant_id)},
        },
    )


# --- Coming in -------------------------------------------------------------------------------------------------------


def _occurrence_get(occurrence_id: int) -> Occurrence:
    occurrence = (
        Occurrence.objects.select_related("meeting", "meeting__organisation", "meeting__host")
        .filter(pk=occurrence_id)
        .first()
    )
    if occurrence is None:
        raise NotFound(_("Not found."))
    return occurrence


def call_join(
    *,
    occurrence_id: int,
    user: User | None,
    link_token: str | None = None,
    display_name: Any = None,
    ip: str | None = None,
    now: datetime.datetime | None = None,
) -> Participant:
    """Ask to come into the call of `occurrence_id`: as the signed-in `user`,
    or as the guest of the link `link_token` (who gave their name on the
    link's page, or gives it now as `display_name`). Returns the participant,
    admitted or waiting in the lobby; asking again returns the same one.

    Raises what selectors.join_verdict refuses (404 not_found, 403 removed /
    safe_mode / guests_not_allowed, 409 not_open, 410 cancelled /
    link_revoked / link_expired), services.join_link_find's 404
    link_not_found and 429, ApplicationError 409 "not_open" when this
    occurrence is not the one open now, and 410 "call_ended" when the host
    ended the call (a host coming in opens it again). Nothing is stored on
    a refusal."""
    now = now or timezone.now()
    occurrence = _occurrence_get(occurrence_id)
    meeting = occurrence.meeting
    if link_token is not None:
        link = services.join_link_find(token=link_token, ip=ip)
        if link.meeting_id != meeting.pk:
            raise NotFound(_("This link is not valid. Check it or ask the host for a new one."), code="link_not_found")
        verdict = selectors.join_verdict(meeting=meeting, link=link, user=user, now=now)
    elif user is not None and user.is_authenticated:
        verdict = selectors.join_verdict(meeting=meeting, user=user, now=now)
    else:
        raise PermissionDenied(_("Sign in or use your personal link."), code="not_authenticated")
    if not verdict.is_allowed:
        raise verdict.refusal()
    assert verdict.occurrence is not None
    if verdict.occurrence.pk != occurrence.pk:
        raise ApplicationError(_("This sitting is not open now."), code="not_open", status_code=409)
    state = CallState.objects.filter(occurrence=occurrence).first()
    is_host = verdict.role == ParticipantRole.HOST
    if state is not None and state.ended_at is not None and not is_host:
        raise ApplicationError(_("The host has ended this meeting."), code="call_ended", status_code=410)
    with transaction.atomic():
        if link_token is not None:
            participant = services.guest_join(
                token=link_token, display_name=display_name or link.guest_name, ip=ip, user=user, now=now
            )
        else:
            assert user is not None
            participant = services.meeting_join(user=user, meeting_id=meeting.pk, now=now)
        if state is not None and state.ended_at is not None and is_host:
            CallState.objects.filter(pk=state.pk).update(ended_at=None, ended_by=None)
    return participant


def participant_status(*, participant_id: int) -> str | None:
    """Where a participant is now (waiting, admitted, denied, removed)."""
    return Participant.objects.filter(pk=participant_id).values_list("status", flat=True).first()


def call_state_of(*, occurrence: Occurrence) -> CallState:
    """The call's settings, made the first time they are asked for: the
    safe-lesson profile is on by default when students are invited."""
    state = CallState.objects.filter(occurrence=occurrence).first()
    if state is None:
        state, _created = CallState.objects.get_or_create(
            occurrence=occurrence,
            defaults={"is_safe_lesson": selectors.meeting_has_children(meeting=occurrence.meeting)},
        )
    return state


def may_speak(*, participant: Participant, state: CallState) -> bool:
    """Hosts always; others unless the microphones are locked, or when they
    have the floor."""
    return (
        participant.role == ParticipantRole.HOST
        or not state.are_microphones_locked
        or state.floor_participant_id == participant.pk
    )


@dataclass
class CallPlan:
    """How a participant's media joins: what starts muted, and who else in
    the call is a host (a safe lesson shows only the hosts' video)."""

    participant: Participant
    state: CallState
    muted: frozenset[str]
    host_participant_ids: list[int]


def call_plan(*, participant_id: int, muted: frozenset[str], now: datetime.datetime | None = None) -> CallPlan | None:
    """None when the participant may not be in the call now."""
    participant = selectors.participant_may_be_in_call(participant_id=participant_id, now=now)
    if participant is None:
        return None
    state = call_state_of(occurrence=participant.occurrence)
    is_host = participant.role == ParticipantRole.HOST
    muted = frozenset(muted)
    if not is_host and (state.is_safe_lesson or not may_speak(participant=participant, state=state)):
        muted |= {"audio"}
    hosts = list(
        Participant.objects.filter(occurrence_id=participant.occurrence_id, role=ParticipantRole.HOST).values_list(
            "pk", flat=True
        )
    )
    return CallPlan(participant=participant, state=state, muted=muted, host_participant_ids=hosts)


@dataclass
class CallEntry:
    participant: Participant
    state: CallState
    presence: CallPresence
    presences: list[CallPresence]
    messages: list[CallMessage]
    lobby: list[Participant]


def call_enter(
    *,
    participant_id: int,
    channel_name: str,
    muted: frozenset[str],
    is_audio_only: bool,
    now: datetime.datetime | None = None,
) -> CallEntry:
    """The participant's media joined through the signalling connection
    `channel_name`: their attendance session starts (or goes on) and they
    are in the call, taking it over from an older connection of theirs.
    Returns what the newcomer needs to see. Raises PermissionDenied
    "not_admitted" (services.attendance_join) and stores nothing then.
    Side effect: "call.presence" joined."""
    now = now or timezone.now()
    with transaction.atomic():
        services.attendance_join(participant_id=participant_id, now=now)
        participant = Participant.objects.select_related("occurrence", "occurrence__meeting", "user").get(
            pk=participant_id
        )
        state = call_state_of(occurrence=participant.occurrence)
        presence, _created = CallPresence.objects.update_or_create(
            participant=participant,
            defaults={
                "occurrence": participant.occurrence,
                "channel_name": channel_name,
                "joined_at": now,
                "is_audio_muted": "audio" in muted,
                "is_video_muted": "video" in muted,
                "is_audio_only": is_audio_only,
                "screen_mid": "",
            },
        )
        presence.participant = participant
        _presence_publish(presence, "joined")
    return CallEntry(
        participant=participant,
        state=state,
        presence=presence,
        presences=call_presences(occurrence_id=participant.occurrence_id),
        messages=call_messages(occurrence_id=participant.occurrence_id),
        lobby=call_lobby(occurrence_id=participant.occurrence_id) if participant.role == ParticipantRole.HOST else [],
    )


def call_leave(
    *, participant_id: int, channel_name: str, reason: str = "left", now: datetime.datetime | None = None
) -> tuple[bool, bool]:
    """The signalling connection `channel_name` is gone (left, closed or
    vanished): if it was the participant's current one, their attendance
    session closes and the others are told. Returns (it was the current
    connection, another connection of theirs is current). Safe to call
    twice."""
    now = now or timezone.now()
    with transaction.atomic():
        presence = CallPresence.objects.select_for_update(of=("self",)).filter(participant_id=participant_id).first()
        if presence is None:
            return False, False
        if presence.channel_name != channel_name:
            return False, True
        presence.delete()
        services.attendance_leave(participant_id=participant_id, now=now)
        _left_publish(occurrence_id=presence.occurrence_id, participant_id=participant_id, reason=reason)
    return True, False


# --- The participant's own switches --------------------------------------------------------------------------------


def _own_presence(*, participant_id: int, channel_name: str) -> tuple[Participant, CallPresence]:
    participant = selectors.participant_may_be_in_call(participant_id=participant_id)
    if participant is None:
        raise PermissionDenied(_("You are not in this call any more."), code="not_admitted")
    presence = (
        CallPresence.objects.select_for_update(of=("self",))
        .filter(participant_id=participant_id, channel_name=channel_name)
        .first()
    )
    if presence is None:
        raise ApplicationError(_("Join the call first."), code="not_joined", status_code=409)
    presence.participant = participant
    return participant, presence


def call_self_mute(*, participant_id: int, channel_name: str, kind: str, is_muted: bool) -> CallPresence:
    """Switch one's own microphone or camera. Raises PermissionDenied
    "microphone_locked" when the host locked the microphones and did not
    give the floor, ApplicationError "not_joined". Side effect:
    "call.presence" updated."""
    with transaction.atomic():
        participant, presence = _own_presence(participant_id=participant_id, channel_name=channel_name)
        if kind == "audio" and not is_muted:
            state = call_state_of(occurrence=participant.occurrence)
            if not may_speak(participant=participant, state=state):
                raise PermissionDenied(
                    _("The host has locked the microphones. Raise your hand to ask for the floor."),
                    code="microphone_locked",
                )
        field = "is_audio_muted" if kind == "audio" else "is_video_muted"
        if getattr(presence, field) != is_muted:
            setattr(presence, field, is_muted)
            presence.save(update_fields=[field])
            _presence_publish(presence, "updated")
    return presence


def call_presence_update(
    *,
    participant_id: int,
    channel_name: str,
    is_hand_raised: bool | None = None,
    is_audio_only: bool | None = None,
    screen_mid: str | None = None,
    now: datetime.datetime | None = None,
) -> CallPresence:
    """Raise or lower one's hand, switch audio-only mode, say which media
    section carries one's shared screen ("" for none). Raises
    ApplicationError "not_joined". Side effect: "call.presence" updated."""
    now = now or timezone.now()
    with transaction.atomic():
        _participant, presence = _own_presence(participant_id=participant_id, channel_name=channel_name)
        changed: list[str] = []
        if is_hand_raised is not None and (presence.hand_raised_at is not None) != is_hand_raised:
            presence.hand_raised_at = now if is_hand_raised else None
            changed.append("hand_raised_at")
        if is_audio_only is not None and presence.is_audio_only != is_audio_only:
            presence.is_audio_only = is_audio_only
            changed.append("is_audio_only")
        if screen_mid is not None and presence.screen_mid != screen_mid:
            presence.screen_mid = screen_mid
            changed.append("screen_mid")
        if changed:
            presence.save(update_fields=changed)
            _presence_publish(presence, "updated")
    return presence


# --- The host's controls ---------------------------------------------------------------------------------------------


def _host_of_call(*, participant_id: int) -> Participant:
    """The participant, when they may be in the call and run it."""
    participant = selectors.participant_may_be_in_call(participant_id=participant_id)
    if participant is None:
        raise PermissionDenied(_("You are not in this call any more."), code="not_admitted")
    if (
        participant.role != ParticipantRole.HOST
        or participant.user is None
        or not selectors.user_manages_meeting(user=participant.user, meeting=participant.occurrence.meeting)
    ):
        raise PermissionDenied(_("Only the host may do this."), code="not_host")
    return participant


def call_host_get(*, participant_id: int) -> Participant:
    """The participant, when they may be in the call and run it. Raises
    PermissionDenied "not_admitted" or "not_host"."""
    return _host_of_call(participant_id=participant_id)


def call_state_lock(*, participant: Participant) -> CallState:
    """The call's state row, locked for the transaction under way."""
    return _state_locked(participant)


def _present(*, occurrence_id: int, participant_id: Any) -> CallPresence:
    presence = (
        CallPresence.objects.select_for_update(of=("self",))
        .select_related("participant")
        .filter(participant_id=participant_id, occurrence_id=occurrence_id)
        .first()
        if isinstance(participant_id, int) and not isinstance(participant_id, bool)
        else None
    )
    if presence is None:
        raise NotFound(_("This participant is not in the call."), code="not_in_call")
    return presence


def _mute(presences: list[CallPresence], kinds: frozenset[str], *, host: Participant) -> list[int]:
    """Mark them muted and tell everyone; returns the participant ids."""
    muted = []
    for presence in presences:
        fields = [field for kind, field in (("audio", "is_audio_muted"), ("video", "is_video_muted")) if kind in kinds]
        for field in fields:
            setattr(presence, field, True)
        presence.save(update_fields=fields)
        _presence_publish(presence, "updated")
        muted.append(presence.participant_id)
    if muted:
        _publish(
            host.occurrence_id,
            {"type": CALL_MUTED, "participants": muted, "kinds": sorted(kinds), "by": host.display_name},
        )
    return muted


def call_participant_mute(*, actor_participant_id: int, participant_id: Any, kinds: frozenset[str]) -> list[int]:
    """The host switches off someone's microphone (or camera); they may
    switch it on again themselves unless the microphones are locked.
    Raises PermissionDenied "not_host", NotFound "not_in_call". Side
    effects: "call.presence" updated, "call.muted"."""
    host = _host_of_call(participant_id=actor_participant_id)
    with transaction.atomic():
        presence = _present(occurrence_id=host.occurrence_id, participant_id=participant_id)
        return _mute([presence], kinds, host=host)


def _others(*, host: Participant, keep: int | None = None) -> list[CallPresence]:
    return list(
        CallPresence.objects.select_for_update(of=("self",))
        .select_related("participant")
        .filter(occurrence_id=host.occurrence_id)
        .exclude(participant__role=ParticipantRole.HOST)
        .exclude(participant_id=keep or 0)
        .order_by("id")
    )


def call_mute_all(*, actor_participant_id: int) -> list[int]:
    """The host switches off every other participant's microphone (hosts
    keep theirs). Returns the participant ids muted."""
    host = _host_of_call(participant_id=actor_participant_id)
    with transaction.atomic():
        return _mute(_others(host=host), frozenset({"audio"}), host=host)


def _state_locked(host: Participant) -> CallState:
    state = call_state_of(occurrence=host.occurrence)
    return CallState.objects.select_for_update(of=("self",)).get(pk=state.pk)


def _state_publish(state: CallState) -> None:
    _publish(state.occurrence_id, {"type": CALL_STATE, "state": state_payload(state)})


def call_microphones_lock(*, actor_participant_id: int, is_locked: bool) -> tuple[CallState, list[int]]:
    """The host locks (or unlocks) the others' microphones: locking
    switches them off, and only a participant given the floor may speak.
    Returns the state and the participant ids muted now."""
    host = _host_of_call(participant_id=actor_participant_id)
    with transaction.atomic():
        state = _state_locked(host)
        muted: list[int] = []
        if state.are_microphones_locked != is_locked:
            state.are_microphones_locked = is_locked
            state.save(update_fields=["are_microphones_locked", "updated_at"])
            _state_publish(state)
        if is_locked:
            muted = _mute(_others(host=host, keep=state.floor_participant_id), frozenset({"audio"}), host=host)
    return state, muted


def call_floor_give(*, actor_participant_id: int, participant_id: Any) -> tuple[CallState, list[int]]:
    """The host gives the floor to a participant in the call (None takes it
    back): with locked microphones only they may switch theirs on, and
    their raised hand goes down. Returns the state and the participant ids
    muted now (the one who had the floor, when the microphones are
    locked). Raises NotFound "not_in_call" for someone not in the call."""
    host = _host_of_call(participant_id=actor_participant_id)
    with transaction.atomic():
        state = _state_locked(host)
        presence = None
        if participant_id is not None:
            presence = _present(occurrence_id=host.occurrence_id, participant_id=participant_id)
        previous = state.floor_participant_id
        new = presence.participant_id if presence is not None else None
        muted: list[int] = []
        if previous != new:
            state.floor_participant_id = new
            state.save(update_fields=["floor_participant", "updated_at"])
            _state_publish(state)
            if previous is not None and state.are_microphones_locked:
                before = CallPresence.objects.select_for_update(of=("self",)).select_related("participant")
                muted = _mute(list(before.filter(participant_id=previous)), frozenset({"audio"}), host=host)
        if presence is not None and presence.hand_raised_at is not None:
            presence.hand_raised_at = None
            presence.save(update_fields=["hand_raised_at"])
            _presence_publish(presence, "updated")
    return state, muted


def call_safe_lesson_set(*, actor_participant_id: int, is_enabled: bool) -> CallState:
    """The host switches the safe-lesson profile: non-hosts see only the
    hosts' video (and join muted)."""
    host = _host_of_call(participant_id=actor_participant_id)
    with transaction.atomic():
        state = _state_locked(host)
        if state.is_safe_lesson != is_enabled:
            state.is_safe_lesson = is_enabled
            state.save(update_fields=["is_safe_lesson", "updated_at"])
            _state_publish(state)
    return state


def call_remove(*, actor_participant_id: int, participant_id: Any, now: datetime.datetime | None = None) -> Participant:
    """The host removes someone from the call: they cannot come back to
    this sitting, a guest's link stops working (services.participant_remove).
    Raises PermissionDenied "not_host", NotFound, ApplicationError
    "cannot_remove_host". Side effects: "participant.removed", and
    "call.presence" left when they were in the call."""
    host = _host_of_call(participant_id=actor_participant_id)
    if not (isinstance(participant_id, int) and not isinstance(participant_id, bool)) or not (
        Participant.objects.filter(pk=participant_id, occurrence_id=host.occurrence_id).exists()
    ):
        raise NotFound(_("Not found."))
    assert host.user is not None
    with transaction.atomic():
        participant = services.participant_remove(
            actor=host.user, meeting_id=host.occurrence.meeting_id, participant_id=participant_id, now=now
        )
        deleted, _kinds = CallPresence.objects.filter(participant_id=participant.pk).delete()
        if deleted:
            _left_publish(occurrence_id=host.occurrence_id, participant_id=participant.pk, reason="removed")
    return participant


def call_lobby_decide(*, actor_participant_id: int, participant_id: Any, admit: bool) -> Participant:
    """The host lets someone waiting in, or not (services.lobby_decide)."""
    host = _host_of_call(participant_id=actor_participant_id)
    if not (isinstance(participant_id, int) and not isinstance(participant_id, bool)) or not (
        Participant.objects.filter(pk=participant_id, occurrence_id=host.occurrence_id).exists()
    ):
        raise NotFound(_("Not found."))
    assert host.user is not None
    return services.lobby_decide(
        actor=host.user, meeting_id=host.occurrence.meeting_id, participant_id=participant_id, admit=admit
    )


def call_end(*, actor_participant_id: int, now: datetime.datetime | None = None) -> CallState:
    """The host ends the call for everyone: every attendance session closes,
    nobody is in the call, and only a host can open it again by coming in.
    Side effect: "call.ended"."""
    now = now or timezone.now()
    host = _host_of_call(participant_id=actor_participant_id)
    with transaction.atomic():
        state = _state_locked(host)
        state.ended_at = now
        state.ended_by = host.user
        state.floor_participant = None
        state.save(update_fields=["ended_at", "ended_by", "floor_participant", "updated_at"])
        CallPresence.objects.filter(occurrence_id=host.occurrence_id).delete()
        services.occurrence_sessions_close(occurrence_id=host.occurrence_id, now=now)
        _publish(host.occurrence_id, {"type": CALL_ENDED, "reason": "ended"})
    return state


# --- The chat of the call ----------------------------------------------------------------------------------------


def _body_clean(value: Any) -> str:
    body = value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""
    if not body:
        raise ApplicationError(_("Write something first."), code="invalid", extra={"field": "body"})
    if len(body) > CALL_MESSAGE_MAX_LENGTH:
        raise ApplicationError(
            _("A message may have at most %(count)d characters.") % {"count": CALL_MESSAGE_MAX_LENGTH},
            code="invalid",
            extra={"field": "body"},
        )
    return body


def call_message_send(*, participant_id: int, body: Any, client_id: Any = None) -> tuple[CallMessage, bool]:
    """Post to the chat of the call (kept with the occurrence). A message
    sent again with the same `client_id` is not stored twice: the first one
    is returned with False. Raises PermissionDenied "not_admitted",
    ApplicationError "invalid" (field body / client_id), RateLimited.
    Side effect: "call.message"."""
    participant = selectors.participant_may_be_in_call(participant_id=participant_id)
    if participant is None:
        raise PermissionDenied(_("You are not in this call any more."), code="not_admitted")
    if client_id is not None and not (isinstance(client_id, str) and CLIENT_ID_PATTERN.match(client_id)):
        raise ApplicationError(
            _("Invalid value of “%(field)s”.") % {"field": "client_id"}, extra={"field": "client_id"}
        )
    text = _body_clean(body)
    if client_id:
        existing = CallMessage.objects.filter(participant=participant, client_id=client_id).first()
        if existing is not None:
            return existing, False
    rate_limit_hit(scope="lesson_call_chat", key=str(participant.pk), rate=settings.LESSONS_CALL_CHAT_RATE)
    fields = {"occurrence_id": participant.occurrence_id, "author_name": participant.display_name, "body": text}
    with transaction.atomic():
        if client_id:
            message, created = CallMessage.objects.get_or_create(
                participant=participant, client_id=client_id, defaults=fields
            )
        else:
            message, created = CallMessage.objects.create(participant=participant, **fields), True
        if created:
            _publish(participant.occurrence_id, {"type": CALL_MESSAGE, "message": message_payload(message)})
    return message, created


# --- Reads -----------------------------------------------------------------------------------------------------------


def call_presences(*, occurrence_id: int) -> list[CallPresence]:
    """Who is in the call now, in the order they came."""
    return list(
        CallPresence.objects.filter(occurrence_id=occurrence_id)
        .select_related("participant")
        .order_by("joined_at", "id")
    )


def call_messages(*, occurrence_id: int, limit: int = MESSAGES_SHOWN) -> list[CallMessage]:
    """The latest `limit` messages of the call's chat, oldest first."""
    latest = list(CallMessage.objects.filter(occurrence_id=occurrence_id).order_by("-created_at", "-id")[:limit])
    return latest[::-1]


def call_lobby(*, occurrence_id: int) -> list[Participant]:
    """Who waits in the lobby of the occurrence."""
    return list(
        Participant.objects.filter(occurrence_id=occurrence_id, status=ParticipantStatus.WAITING).order_by(
            "requested_at", "id"
        )
    )


def call_lobby_of_host(*, participant_id: int) -> list[Participant] | None:
    """The lobby, for a participant who runs the call (None for others)."""
    try:
        host = _host_of_call(participant_id=participant_id)
    except PermissionDenied:
        return None
    return call_lobby(occurrence_id=host.occurrence_id)


def quality_level(*, rtt_ms: float | None, loss: float | None) -> str:
    """A participant's connection as "good", "fair" or "poor" from what
    their browser measured: the round trip to the media server and the
    share of packets lost."""
    rtt = rtt_ms or 0.0
    lost = loss or 0.0
    if lost > 0.08 or rtt > 600:
        return "poor"
    if lost > 0.02 or rtt > 250:
        return "fair"
    return "good"
