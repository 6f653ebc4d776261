"""Recording a call (SPEC §7, optional): a host starts and stops it when the
meeting allows it (`Meeting.is_recording_enabled`, off by default, switched
in the meeting's settings); everyone in the call and in its lobby is told
("call.recording"); the media worker writes the file (lessons.media.recording)
and reports `recording.finished`; a Celery task then posts the file, once,
to the class chat of the meeting's class — or to the staff chat for a staff
meeting, or, for a meeting with neither, to the meeting's own chat (the chat
of its call) with a link only the meeting's people can open.

Writes and the reads that go with them are kept together here because they
are one small subject, like lessons.calls.

Events to the occurrence's group (after commit), written to browsers as is:

- "call.recording": {"recording": {"id", "active", "started_at", "finished_at"}}
"""

import datetime
import json
import logging
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from chats.models import Chat, ChatKind, ChatMember, Message
from chats.services import content as chat_content
from chats.services import messages as chat_messages
from common.errors import ApplicationError, NotFound, PermissionDenied
from lessons import calls, events, selectors
from lessons.models import (
    AudienceKind,
    CallMessage,
    CallPresence,
    Meeting,
    MeetingAudience,
    Participant,
    ParticipantRole,
    Recording,
    RecordingStatus,
)

logger = logging.getLogger(__name__)

CALL_RECORDING = "call.recording"
CONTENT_TYPE = "video/webm"
# Attachment.size is a 32-bit column.
ATTACHMENT_SIZE_MAX = 2**31 - 1


def recording_payload(recording: Recording | None) -> dict[str, Any] | None:
    if recording is None:
        return None
    return {
        "id": recording.pk,
        "active": recording.status == RecordingStatus.RECORDING,
        "started_at": recording.started_at.isoformat(),
        "finished_at": recording.finished_at.isoformat() if recording.finished_at else None,
    }


def _publish(recording: Recording) -> None:
    events.occurrence_event_publish(
        occurrence_id=recording.occurrence_id,
        event={"type": CALL_RECORDING, "recording": recording_payload(recording)},
    )


def recording_running(*, occurrence_id: int) -> Recording | None:
    """The recording under way in the occurrence's call, if any."""
    return Recording.objects.filter(occurrence_id=occurrence_id, status=RecordingStatus.RECORDING).first()


def _enqueue_after_commit(task_name: str, recording_id: int) -> None:
    def enqueue() -> None:
        from lessons import tasks

        try:
            getattr(tasks, task_name).delay(recording_id)
        except Exception:
            logger.warning("%s for recording %s not enqueued (broker unavailable)", task_name, recording_id)

    transaction.on_commit(enqueue)


# --- Starting and stopping -------------------------------------------------------------------------------------------


def recording_start(*, actor_participant_id: int, now: datetime.datetime | None = None) -> Recording:
    """A host starts recording the call. The file's name is decided here
    (under MEDIA_ROOT/recordings/); the signalling side then asks the media
    worker to write it. Raises PermissionDenied "not_host" and
    "recording_not_allowed" (the meeting's settings do not allow it),
    ApplicationError 409 "already_recording". Side effect: "call.recording"."""
    now = now or timezone.now()
    host = calls.call_host_get(participant_id=actor_participant_id)
    meeting = host.occurrence.meeting
    if not meeting.is_recording_enabled:
        raise PermissionDenied(
            _("Recording is not allowed for this meeting. Allow it in the meeting's settings first."),
            code="recording_not_allowed",
        )
    name = f"recordings/{now:%Y/%m}/occurrence-{host.occurrence_id}-{secrets.token_hex(8)}.webm"
    with transaction.atomic():
        # The call's state row serialises hosts starting at once.
        calls.call_state_lock(participant=host)
        if recording_running(occurrence_id=host.occurrence_id) is not None:
            raise ApplicationError(
                _("The meeting is being recorded already."), code="already_recording", status_code=409
            )
        recording = Recording.objects.create(
            occurrence_id=host.occurrence_id,
            status=RecordingStatus.RECORDING,
            file=name,
            started_at=now,
            started_by=host.user,
        )
        _publish(recording)
    return recording


def recording_stop(*, actor_participant_id: int) -> Recording:
    """A host stops the recording: returns the one under way (the worker
    then completes the file and reports it: recording_finished). In case
    that report is lost, a task picks the worker's sidecar report up.
    Raises PermissionDenied "not_host", ApplicationError 409
    "not_recording"."""
    host = calls.call_host_get(participant_id=actor_participant_id)
    recording = recording_running(occurrence_id=host.occurrence_id)
    if recording is None:
        raise ApplicationError(_("The meeting is not being recorded."), code="not_recording", status_code=409)
    with transaction.atomic():
        _enqueue_after_commit("recording_complete", recording.pk)
    return recording


def recording_collect_soon(*, occurrence_id: int) -> None:
    """The call ended or emptied (the worker completes the file on its
    own): make sure the recording under way is collected."""
    recording = recording_running(occurrence_id=occurrence_id)
    if recording is not None:
        with transaction.atomic():
            _enqueue_after_commit("recording_complete", recording.pk)


def recording_fail(*, recording_id: int, now: datetime.datetime | None = None) -> bool:
    """The worker refused to record, or never completed the file. Returns
    whether this call marked it failed. Side effect: "call.recording"."""
    now = now or timezone.now()
    with transaction.atomic():
        changed = Recording.objects.filter(pk=recording_id, status=RecordingStatus.RECORDING).update(
            status=RecordingStatus.FAILED, finished_at=now
        )
        if changed:
            _publish(Recording.objects.get(pk=recording_id))
    return bool(changed)


def recording_finished(
    *, recording_id: Any, path: Any, duration: Any, size: Any, now: datetime.datetime | None = None
) -> bool:
    """The worker completed the file (its `recording.finished` event, or
    the report it left next to the file). Every call socket of the
    occurrence may say so; exactly one changes the row (True), and that one
    enqueues the posting after commit. Side effect: "call.recording"."""
    now = now or timezone.now()
    try:
        pk = int(recording_id)
        seconds = max(0.0, float(duration))
        length = max(0, int(size))
    except (TypeError, ValueError):
        return False
    if not isinstance(path, str):
        return False
    with transaction.atomic():
        changed = Recording.objects.filter(pk=pk, status=RecordingStatus.RECORDING, file=path).update(
            status=RecordingStatus.READY, finished_at=now, duration_seconds=seconds, size=length
        )
        if changed:
            _publish(Recording.objects.get(pk=pk))
            _enqueue_after_commit("recording_post", pk)
    return bool(changed)


def _sidecar(recording: Recording) -> Path:
    return Path(settings.MEDIA_ROOT) / (recording.file.name + ".json")


def recording_complete(*, recording_id: int) -> bool:
    """For the task that makes sure a stopped recording is collected:
    True when there is nothing more to wait for (collected, posted or
    failed), False while the worker's report is not there yet."""
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None or recording.status != RecordingStatus.RECORDING:
        return True
    try:
        report = json.loads(_sidecar(recording).read_text())
    except (OSError, ValueError):
        return False
    recording_finished(
        recording_id=recording.pk, path=report.get("path"), duration=report.get("duration"), size=report.get("size")
    )
    return True


# --- Posting the file ------------------------------------------------------------------------------------------------


def recording_chat(*, meeting: Meeting) -> Chat | None:
    """Where the meeting's recordings go: the class chat of its first
    invited class (students' chat for a lesson's students, parents' chat
    for a class's parents), else the organisation's staff chat for a staff
    meeting; None when it has neither (then the call's own chat)."""
    audience = (
        MeetingAudience.objects.filter(meeting=meeting)
        .filter(Q(kind__in=[AudienceKind.GROUP_STUDENTS, AudienceKind.GROUP_GUARDIANS]) | Q(kind=AudienceKind.STAFF))
        .order_by("kind", "id")
    )
    by_kind: dict[str, MeetingAudience] = {}
    for rule in audience:
        by_kind.setdefault(rule.kind, rule)
    for kind, chat_kind in (
        (AudienceKind.GROUP_STUDENTS, ChatKind.CLASS_STUDENTS),
        (AudienceKind.GROUP_GUARDIANS, ChatKind.CLASS_PARENTS),
    ):
        first = by_kind.get(kind)
        if first is not None:
            chat = Chat.objects.filter(study_group_id=first.study_group_id, kind=chat_kind, is_archived=False).first()
            if chat is not None:
                return chat
    if AudienceKind.STAFF in by_kind:
        return Chat.objects.filter(
            organisation_id=meeting.organisation_id, kind=ChatKind.STAFF, is_archived=False
        ).first()
    return None


def duration_text(seconds: float | None) -> str:
    """ "1:02:05" or "4:07": the same in every language."""
    total = round(seconds or 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _recording_text(recording: Recording) -> str:
    occurrence = recording.occurrence
    local = timezone.localtime(occurrence.starts_at, timezone=_zone(occurrence.meeting.time_zone))
    return _("Recording of “%(title)s”, %(date)s, %(duration)s.") % {
        "title": occurrence.meeting.title,
        "date": formats.date_format(local, "DATETIME_FORMAT"),
        "duration": duration_text(recording.duration_seconds),
    }


def _zone(name: str) -> Any:
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


def file_name(recording: Recording) -> str:
    local = timezone.localtime(recording.started_at, timezone=_zone(recording.occurrence.meeting.time_zone))
    return f"recording-{local:%Y-%m-%d-%H%M}.webm"


def _chat_message_create(*, chat: Chat, author: User | None, text: str, client_id: str) -> Message:
    """As the host when they are in the chat, otherwise from the system."""
    if author is not None and ChatMember.objects.active().filter(chat=chat, user=author).exists():
        try:
            message, _created = chat_messages.message_send(user=author, chat_id=chat.pk, body=text, client_id=client_id)
        except (PermissionDenied, NotFound, ApplicationError):
            message = None
        if isinstance(message, Message):
            return message
    return chat_messages.message_system_post(chat=chat, text=text)


def recording_post(*, recording_id: int) -> Recording | None:
    """Post a finished recording where its meeting's people find it
    (recording_chat), exactly once even when run twice at once: the row is
    locked and remembers the message. Returns the recording (None when it
    is gone or not ready)."""
    with transaction.atomic(), translation.override(settings.LANGUAGE_CODE):
        recording = (
            Recording.objects.select_for_update(of=("self",))
            .select_related("occurrence", "occurrence__meeting", "occurrence__meeting__host", "started_by")
            .filter(pk=recording_id)
            .first()
        )
        if recording is None or recording.status != RecordingStatus.READY:
            return recording
        meeting = recording.occurrence.meeting
        author = recording.started_by or meeting.host
        text = _recording_text(recording)
        chat = recording_chat(meeting=meeting)
        if chat is not None:
            message = _chat_message_create(chat=chat, author=author, text=text, client_id=f"recording-{recording.pk}")
            chat_content.attachment_stored_add(
                message=message,
                file_name=recording.file.name,
                original_name=file_name(recording),
                content_type=CONTENT_TYPE,
                size=min(recording.size or 0, ATTACHMENT_SIZE_MAX),
                uploaded_by=author,
            )
            recording.chat_message = message
        else:
            recording.call_message = _call_message_create(recording=recording, text=text)
        recording.status = RecordingStatus.POSTED
        recording.save(update_fields=["status", "chat_message", "call_message"])
    return recording


def _call_message_create(*, recording: Recording, text: str) -> CallMessage | None:
    """The link to the file in the call's own chat, from the host who
    recorded (as a participant of that sitting)."""
    hosts = Participant.objects.filter(occurrence_id=recording.occurrence_id, role=ParticipantRole.HOST)
    participant = hosts.filter(user_id=recording.started_by_id).first() if recording.started_by_id else None
    participant = participant or hosts.order_by("id").first()
    if participant is None:
        return None
    link = reverse("lessons:recording_file", args=[recording.pk])
    message = CallMessage.objects.create(
        occurrence_id=recording.occurrence_id,
        participant=participant,
        author_name=participant.display_name,
        body=text + "\n" + link,
    )
    events.occurrence_event_publish(
        occurrence_id=recording.occurrence_id,
        event={"type": calls.CALL_MESSAGE, "message": calls.message_payload(message)},
    )
    return message


def recording_for_download(*, user: User, recording_id: int) -> Recording:
    """A posted recording of a meeting `user` may see (its host, its
    invitees), for the link in the call's own chat. Recordings posted to a
    chat are served by the chat, to its members. Raises NotFound for
    everything else, exactly as for one that does not exist."""
    recording = (
        Recording.objects.select_related("occurrence")
        .filter(pk=recording_id, status=RecordingStatus.POSTED, chat_message__isnull=True, call_message__isnull=False)
        .first()
    )
    if recording is None or not user.is_authenticated:
        raise NotFound(_("Not found."))
    selectors.meeting_get(user=user, meeting_id=recording.occurrence.meeting_id)
    return recording


def recording_collect_if_empty(*, occurrence_id: int) -> None:
    """The last participant left the call: the worker completes the file
    of an empty room on its own; make sure it is collected."""
    if not CallPresence.objects.filter(occurrence_id=occurrence_id).exists():
        recording_collect_soon(occurrence_id=occurrence_id)


def recording_running_payload(*, occurrence_id: int) -> dict[str, Any] | None:
    """For those coming in (the call, the lobby): the recording under way."""
    return recording_payload(recording_running(occurrence_id=occurrence_id))
