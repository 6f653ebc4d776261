"""The lessons part of merging two accounts (accounts.merge): meetings,
invitations, participation and attendance of both accounts become the kept
account's; where both took part in one lesson, their attendance is joined
under one participant."""

from accounts.models import User
from lessons.models import (
    AttendanceSession,
    CallMessage,
    CallPresence,
    CallState,
    MeetingAudience,
    MeetingNotification,
    Participant,
    ParticipantRole,
    ParticipantStatus,
    Reminder,
    ReminderPreference,
)

# The participant's standing in a lesson: the stronger one is kept.
_ROLE_RANK: dict[str, int] = {ParticipantRole.HOST: 2, ParticipantRole.MEMBER: 1, ParticipantRole.GUEST: 0}
_STATUS_RANK: dict[str, int] = {
    ParticipantStatus.ADMITTED: 3,
    ParticipantStatus.WAITING: 2,
    ParticipantStatus.REMOVED: 1,
    ParticipantStatus.DENIED: 0,
}


def lessons_merge_move(*, kept: User, absorbed: User) -> dict[str, int]:
    """Fold duplicates of the absorbed account into the kept one's:

    - both took part in one occurrence: one participant with the stronger
      role and status, the earlier request; the absorbed one's attendance
      sessions and in-call messages move to it (attendance reports count
      both), a floor given to it goes along, its live presence is dropped;
    - both invited personally to one meeting, reminded of one occurrence,
      or notified of the same thing: one row;
    - the reminder preference: the kept account's."""
    folded: dict[str, int] = {}

    def note(name: str, count: int) -> None:
        if count:
            folded["lessons." + name] = folded.get("lessons." + name, 0) + count

    kept_participants = {p.occurrence_id: p for p in Participant.objects.filter(user=kept)}
    count = 0
    for participant in Participant.objects.filter(user=absorbed, occurrence_id__in=list(kept_participants)):
        twin = kept_participants[participant.occurrence_id]
        updates: dict[str, object] = {"requested_at": min(twin.requested_at, participant.requested_at)}
        if _ROLE_RANK.get(participant.role, 0) > _ROLE_RANK.get(twin.role, 0):
            updates["role"] = participant.role
        if _STATUS_RANK.get(participant.status, 0) > _STATUS_RANK.get(twin.status, 0):
            updates.update(
                status=participant.status, decided_at=participant.decided_at, decided_by_id=participant.decided_by_id
            )
        Participant.objects.filter(pk=twin.pk).update(**updates)
        note(
            "attendancesession_moved",
            AttendanceSession.objects.filter(participant=participant).update(participant=twin),
        )
        clashing = (
            CallMessage.objects.filter(participant=twin).exclude(client_id="").values_list("client_id", flat=True)
        )
        CallMessage.objects.filter(participant=participant, client_id__in=list(clashing)).update(client_id="")
        note("callmessage_moved", CallMessage.objects.filter(participant=participant).update(participant=twin))
        CallState.objects.filter(floor_participant=participant).update(floor_participant=twin)
        CallPresence.objects.filter(participant=participant).delete()
        participant.delete()
        count += 1
    note("participant_duplicate", count)

    note("meetingaudience_duplicate", _drop_twins(MeetingAudience, ("meeting_id",), kept, absorbed))
    note("reminder_duplicate", _drop_twins(Reminder, ("occurrence_id", "kind"), kept, absorbed))
    note("meetingnotification_duplicate", _drop_twins(MeetingNotification, ("meeting_id", "key"), kept, absorbed))
    if ReminderPreference.objects.filter(user=kept).exists():
        note("reminderpreference_duplicate", ReminderPreference.objects.filter(user=absorbed).delete()[0])
    return folded


def _drop_twins(model: type, keys: tuple[str, ...], kept: User, absorbed: User) -> int:
    """Delete the absorbed account's rows of `model` that the kept account
    already has with the same `keys`."""
    kept_keys = set(model.objects.filter(user_id=kept.pk).values_list(*keys))  # type: ignore[attr-defined]
    twins = [
        pk
        for pk, *values in model.objects.filter(user_id=absorbed.pk).values_list("pk", *keys)  # type: ignore[attr-defined]
        if tuple(values) in kept_keys
    ]
    if not twins:
        return 0
    return model.objects.filter(pk__in=twins).delete()[0]  # type: ignore[attr-defined,no-any-return]
