"""Writes of the adoption app: activity days from the chat hooks, the weekly
figures, roadmaps and the in-product course.

How activity is counted (docs/adoption.md has the same text for officials):

- a person READ on a day when their read position in some chat moved
  forward that day (chats.extensions read hook);
- a person WROTE on a day when they sent a text message with at least
  WRITE_MIN_LETTERS letters whose letters differ from their previous counted
  message's (case and everything but letters ignored): empty messages,
  emoji, "ок", "+" and the same text pasted again do not count;
- a day counts once per person and kind, however many messages or reads it
  had: a burst of 500 messages is one day, like one message.
The hooks run on the chat's hot path after commit: one Redis round trip per
event, and one insert per person, kind and day at most."""

import datetime
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from adoption.models import ActivityDay, ActivityKind, CourseProgress, Roadmap, RoadmapStage, StageKind, WeeklyFigures
from common.errors import ApplicationError
from common.services import audit_record, model_changes
from organisations.models import Membership, Region, Role

if TYPE_CHECKING:
    from chats.models import Message

logger = logging.getLogger(__name__)

WRITE_MIN_LETTERS = 5
# The gate keys live a little over a day: a day is over by then.
DAY_GATE_SECONDS = 26 * 3600
# The previous counted message of a writer is remembered this long.
LAST_WRITE_SECONDS = 8 * 24 * 3600
EDUCATOR_ROLES = (Role.TEACHER, Role.ADMINISTRATOR, Role.STAFF)
FAMILY_ROLES = (Role.STUDENT, Role.PARENT)
OFFICIAL_ROLES = (Role.OFFICIAL,)


# --- Activity ------------------------------------------------------------------------------------------------


def activity_day(moment: datetime.datetime | None = None) -> datetime.date:
    """The day an event belongs to: the portal's time zone (TIME_ZONE)."""
    return timezone.localdate(moment) if moment is not None else timezone.localdate()


def activity_record(*, user_id: int, kind: str, day: datetime.date | None = None) -> bool:
    """Note that `user_id` was active as `kind` on `day` (today); True when
    this is the first such note of the day. A cache key lets only the first
    event of the day reach the database; if the cache is down the insert is
    tried anyway (it ignores a row that exists). Never raises."""
    day = day or activity_day()
    if _seen_before(kind, user_id, day):
        return False
    key = "adoption:day:" + kind + ":" + str(user_id) + ":" + day.isoformat()
    try:
        if not cache.add(key, 1, DAY_GATE_SECONDS):
            _remember(kind, user_id, day)
            return False
    except Exception as error:
        logger.warning("Activity gate unavailable, writing through: %s", type(error).__name__)
        try:
            with transaction.atomic():
                _row, created = ActivityDay.objects.get_or_create(user_id=user_id, day=day, kind=kind)
        except Exception as database_error:
            logger.warning("Could not record an activity day: %s", type(database_error).__name__)
            return False
        return created
    try:
        ActivityDay.objects.bulk_create([ActivityDay(user_id=user_id, day=day, kind=kind)], ignore_conflicts=True)
    except Exception as error:
        logger.warning("Could not record an activity day: %s", type(error).__name__)
        return False
    _remember(kind, user_id, day)
    return True


# A memo of this process: who already counted today, so that their further
# events cost no Redis round trip. Only a shortcut: Redis and the unique
# row decide, and the memo is forgotten when the day changes or it grows.
_SEEN_LIMIT = 200_000
_seen: set[tuple[str, int]] = set()
_seen_day: list[datetime.date] = []
# Writers not counted yet today whose message repeated their previous
# counted one (user id -> that fingerprint): the same text again, as a class
# pastes a reminder, need not ask Redis again the same day.
_repeats: dict[int, str] = {}


def _seen_before(kind: str, user_id: int, day: datetime.date) -> bool:
    return bool(_seen_day) and _seen_day[0] == day and (kind, user_id) in _seen


def _memo_is_for(day: datetime.date) -> bool:
    """Make the memo the one of `day` (forgetting an earlier day's); False
    for an event of an earlier day, which is not worth remembering."""
    if not _seen_day or _seen_day[0] != day or len(_seen) + len(_repeats) >= _SEEN_LIMIT:
        if _seen_day and _seen_day[0] > day:
            return False
        _seen.clear()
        _repeats.clear()
        _seen_day[:] = [day]
    return True


def _remember(kind: str, user_id: int, day: datetime.date) -> None:
    if _memo_is_for(day):
        _seen.add((kind, user_id))


def _repeat_remember(user_id: int, day: datetime.date, fingerprint: str) -> None:
    if _memo_is_for(day):
        _repeats[user_id] = fingerprint


def activity_memo_forget() -> None:
    """Forget this process's memo (tests: ids are reused between them)."""
    _seen.clear()
    _repeats.clear()
    _seen_day.clear()


def write_fingerprint(body: str) -> str | None:
    """What makes a message count as writing: its letters, lower-cased, and
    None when it has fewer than WRITE_MIN_LETTERS of them."""
    letters = "".join(character for character in body.lower() if character.isalpha())
    if len(letters) < WRITE_MIN_LETTERS:
        return None
    return hashlib.blake2b(letters.encode(), digest_size=8).hexdigest()


def message_written(*, user_id: int, body: str, moment: datetime.datetime | None = None) -> bool:
    """Count a message of `user_id` as writing when it qualifies (see the
    module's text); True when it made the day count."""
    fingerprint = write_fingerprint(body)
    if fingerprint is None:
        return False
    day = activity_day(moment)
    if _seen_before(ActivityKind.WRITE, user_id, day):
        return False
    if _seen_day and _seen_day[0] == day and _repeats.get(user_id) == fingerprint:
        return False
    key = "adoption:last-write:" + str(user_id)
    try:
        previous = cache.get(key)
    except Exception:
        previous = None
    if isinstance(previous, str):
        previous_day, _separator, previous_fingerprint = previous.partition("|")
        if previous_day == day.isoformat():
            _remember(ActivityKind.WRITE, user_id, day)
            return False
        if previous_fingerprint == fingerprint:
            _repeat_remember(user_id, day, fingerprint)
            return False
    counted = activity_record(user_id=user_id, kind=ActivityKind.WRITE, day=day)
    try:
        cache.set(key, day.isoformat() + "|" + fingerprint, LAST_WRITE_SECONDS)
    except Exception as error:
        logger.warning("Could not remember a writer's last message: %s", type(error).__name__)
    return counted


def message_hook(message: "Message") -> None:
    """chats.extensions message hook: text messages by people only."""
    if message.author_id is None or message.kind != "text" or message.deleted_at is not None:
        return
    message_written(user_id=message.author_id, body=message.body or "")


def read_hook(user_id: int, chat_id: int, seq: int) -> None:
    """chats.extensions read hook: the read position moved forward."""
    activity_record(user_id=user_id, kind=ActivityKind.READ)


def adoption_merge_move(*, kept: User, absorbed: User) -> dict[str, int]:
    """accounts.merge mover: activity days and course progress of both
    accounts; a day both were active counts once, the course counts as
    completed when either completed it (the earlier completion)."""
    kept_days = set(ActivityDay.objects.filter(user=kept).values_list("day", "kind"))
    twins = [
        pk
        for pk, day, kind in ActivityDay.objects.filter(user=absorbed).values_list("pk", "day", "kind")
        if (day, kind) in kept_days
    ]
    folded = {}
    if twins:
        folded["adoption.activityday_duplicate"] = ActivityDay.objects.filter(pk__in=twins).delete()[0]
    kept_progress = CourseProgress.objects.filter(user=kept).first()
    absorbed_progress = CourseProgress.objects.filter(user=absorbed).first()
    if kept_progress is not None and absorbed_progress is not None:
        completions = [moment for moment in (kept_progress.completed_at, absorbed_progress.completed_at) if moment]
        CourseProgress.objects.filter(pk=kept_progress.pk).update(
            steps_seen=max(kept_progress.steps_seen, absorbed_progress.steps_seen),
            completed_at=min(completions) if completions else None,
        )
        absorbed_progress.delete()
        folded["adoption.courseprogress_duplicate"] = 1
    return folded


def bot_accounts_merge_check(*, kept: User, absorbed: User) -> None:
    """accounts.merge check: a bot's account is the bot (bots.Bot.user), not
    a person's; re-pointing it would turn a person into the bot. Registered
    here until the bots app registers it itself."""
    from bots.models import Bot

    if Bot.objects.filter(user_id__in=[kept.pk, absorbed.pk]).exists():
        raise ApplicationError(
            _("The other account cannot be merged."),
            code="merge_account_unavailable",
            extra={"field": "other_phone"},
        )


# --- Weekly figures ------------------------------------------------------------------------------------------


def week_start(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


def _week_bounds(week: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    zone = timezone.get_default_timezone()
    start = datetime.datetime.combine(week, datetime.time.min, tzinfo=zone)
    return start, start + datetime.timedelta(days=7)


def _migration_counts(organisation_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    # The migration app gives the counts; without it (a portal that never
    # imported old chats) every organisation has none.
    try:
        from migration.selectors import migration_counts
    except ImportError:  # pragma: no cover - the app is installed in this project
        return {}
    return migration_counts(organisation_ids=organisation_ids)


def weekly_figures_build(*, week: datetime.date) -> int:
    """Build (or rebuild) the figures of every organisation for the week that
    starts on Monday `week`; return the number of organisations.

    Idempotent: the week's rows are replaced in one transaction. People are
    counted by their memberships active at some time in the week; a person
    with roles in two organisations counts in each. Queries: memberships,
    the week's activity days, course completions, migration counts, and the
    write; all linear in their rows."""
    week = week_start(week)
    start, end = _week_bounds(week)
    last_day = week + datetime.timedelta(days=6)
    activity: dict[str, set[int]] = defaultdict(set)
    for user_id, kind in (
        ActivityDay.objects.filter(day__gte=week, day__lte=last_day)
        .values_list("user_id", "kind")
        .iterator(chunk_size=20000)
    ):
        activity[kind].add(user_id)
    writers = activity[ActivityKind.WRITE]
    readers = activity[ActivityKind.READ] | writers
    anything = readers | activity[ActivityKind.VISIT]
    completed = set(
        CourseProgress.objects.filter(completed_at__lt=end).values_list("user_id", flat=True).iterator(chunk_size=20000)
    )
    people: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    memberships = (
        Membership.objects.filter(started_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start))
        .filter(role__in=(*EDUCATOR_ROLES, *FAMILY_ROLES, *OFFICIAL_ROLES))
        .values_list("organisation_id", "role", "user_id")
        .order_by()
    )
    for organisation_id, role, user_id in memberships.iterator(chunk_size=20000):
        group = "educators" if role in EDUCATOR_ROLES else "families" if role in FAMILY_ROLES else "officials"
        people[organisation_id][group].add(user_id)
    chats = _migration_counts(people.keys())
    rows = []
    for organisation_id, groups in people.items():
        educators, families, officials = groups["educators"], groups["families"], groups["officials"]
        migrated, eligible = chats.get(organisation_id, (0, 0))
        rows.append(
            WeeklyFigures(
                organisation_id=organisation_id,
                week=week,
                educators=len(educators),
                educators_writing=len(educators & writers),
                educators_course_completed=len(educators & completed),
                families=len(families),
                families_reading=len(families & readers),
                officials=len(officials),
                officials_active=len(officials & anything),
                chats_eligible=eligible,
                chats_migrated=migrated,
            )
        )
    with transaction.atomic():
        WeeklyFigures.objects.filter(week=week).delete()
        WeeklyFigures.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def weekly_figures_refresh(*, today: datetime.date | None = None) -> list[datetime.date]:
    """Rebuild the current week and the one before (late events and the
    migration's progress still change them); earlier weeks stay as built.
    Returns the weeks built."""
    today = today or activity_day()
    current = week_start(today)
    weeks = [current - datetime.timedelta(days=7), current]
    for week in weeks:
        weekly_figures_build(week=week)
    return weeks


# --- Roadmaps ------------------------------------------------------------------------------------------------

TARGET_FIELDS = [
    "target_educators_writing",
    "target_families_reading",
    "target_chats_migrated",
    "target_course_completed",
]


def default_stages(academic_year: int) -> dict[str, tuple[datetime.date, datetime.date]]:
    """Summer preparation (July–August), active migration (September–
    October), completion by 1 November."""
    return {
        StageKind.PREPARATION: (datetime.date(academic_year, 7, 1), datetime.date(academic_year, 8, 31)),
        StageKind.ACTIVE_MIGRATION: (datetime.date(academic_year, 9, 1), datetime.date(academic_year, 10, 31)),
        StageKind.COMPLETION: (datetime.date(academic_year, 11, 1), datetime.date(academic_year, 11, 1)),
    }


def roadmap_ensure(*, region: Region, academic_year: int) -> Roadmap:
    """The roadmap of `region` for `academic_year`, created with the default
    stages and targets the first time it is asked for."""
    roadmap, created = Roadmap.objects.get_or_create(region=region, academic_year=academic_year)
    if created:
        RoadmapStage.objects.bulk_create(
            [
                RoadmapStage(roadmap=roadmap, kind=kind, starts_on=starts_on, ends_on=ends_on)
                for kind, (starts_on, ends_on) in default_stages(academic_year).items()
            ]
        )
    return roadmap


def _field_error(message: str, field: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, code=code, extra={"field": field})


def target_clean(*, field: str, value: Any) -> int:
    """A target: a whole percentage 0–100. Raises ApplicationError
    "invalid_target" naming the field."""
    try:
        number = int(str(value).strip().rstrip("%"))
    except (TypeError, ValueError):
        raise _field_error(_("Enter a whole number from 0 to 100."), field, "invalid_target") from None
    if not 0 <= number <= 100:
        raise _field_error(_("Enter a whole number from 0 to 100."), field, "invalid_target")
    return number


def date_clean(*, field: str, value: Any) -> datetime.date:
    """A date as YYYY-MM-DD. Raises ApplicationError "invalid_date"."""
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        raise _field_error(_("Enter a date like 2026-09-01."), field, "invalid_date") from None


def roadmap_update(
    *, actor: User, roadmap: Roadmap, targets: dict[str, Any], stages: dict[str, tuple[Any, Any]]
) -> Roadmap:
    """Change the targets and stage dates of `roadmap` (permission is the
    caller's: selectors.roadmap_editable). `targets` maps TARGET_FIELDS to
    percentages, `stages` maps a StageKind to (starts_on, ends_on); what is
    not given stays. Raises ApplicationError naming the field
    ("invalid_target", "invalid_date", "stage_dates": the end before the
    start, "stage_order": stages overlap or are out of order); nothing
    changes then. Audited with the changes."""
    cleaned_targets = {}
    for field, value in targets.items():
        if field not in TARGET_FIELDS:
            raise _field_error(_("Unknown field."), field)
        cleaned_targets[field] = target_clean(field=field, value=value)
    current = {stage.kind: stage for stage in roadmap.stages.all()}
    cleaned_stages: dict[str, tuple[datetime.date, datetime.date]] = {
        kind: (stage.starts_on, stage.ends_on) for kind, stage in current.items()
    }
    for kind, (starts_on, ends_on) in stages.items():
        if kind not in StageKind.values:
            raise _field_error(_("Unknown stage."), "stages")
        start = date_clean(field=kind + "_starts_on", value=starts_on)
        end = date_clean(field=kind + "_ends_on", value=ends_on)
        if end < start:
            raise _field_error(_("The stage cannot end before it starts."), kind + "_ends_on", "stage_dates")
        cleaned_stages[kind] = (start, end)
    ordered = [cleaned_stages[kind] for kind in StageKind.values if kind in cleaned_stages]
    for (_first_start, first_end), (second_start, _second_end) in pairwise(ordered):
        if second_start < first_end:
            raise _field_error(
                _("Stages must follow each other: preparation, migration, completion."), "stages", "stage_order"
            )
    with transaction.atomic():
        old = {field: getattr(roadmap, field) for field in TARGET_FIELDS}
        for field, value in cleaned_targets.items():
            setattr(roadmap, field, value)
        changes = model_changes(roadmap, TARGET_FIELDS, old)
        for kind, (start, end) in cleaned_stages.items():
            stage = current.get(kind)
            if stage is None:
                RoadmapStage.objects.create(roadmap=roadmap, kind=kind, starts_on=start, ends_on=end)
                changes[kind] = [None, [start.isoformat(), end.isoformat()]]
            elif (stage.starts_on, stage.ends_on) != (start, end):
                changes[kind] = [
                    [stage.starts_on.isoformat(), stage.ends_on.isoformat()],
                    [start.isoformat(), end.isoformat()],
                ]
                RoadmapStage.objects.filter(pk=stage.pk).update(starts_on=start, ends_on=end)
        if changes:
            roadmap.updated_by = actor
            roadmap.save()
            audit_record(actor=actor, action="roadmap_update", target=roadmap, changes=changes)
    return roadmap


# --- The course ----------------------------------------------------------------------------------------------


def course_step_seen(*, user: User, step: int, steps_total: int) -> CourseProgress:
    """Note that `user` reached `step` (1-based) of the course; reaching the
    last step completes it (once: the first completion time stays). Raises
    ApplicationError "invalid_step"."""
    if not isinstance(step, int) or not 1 <= step <= steps_total:
        raise _field_error(_("No such step of the course."), "step", "invalid_step")
    with transaction.atomic():
        progress, _created = CourseProgress.objects.select_for_update().get_or_create(user=user)
        changed = []
        if step > progress.steps_seen:
            progress.steps_seen = step
            changed.append("steps_seen")
        if step == steps_total and progress.completed_at is None:
            progress.completed_at = timezone.now()
            changed.append("completed_at")
        if changed:
            progress.save(update_fields=changed)
    return progress


def official_visit_record(*, user: User) -> None:
    """An official opened the dashboard or a roadmap: counts as their
    activity for the week."""
    activity_record(user_id=user.pk, kind=ActivityKind.VISIT)
