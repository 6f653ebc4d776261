from typing import Any

from django.db import models

from common.models import AuditEvent


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model,
    organisation_id: int | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry to the audit log. Never raises on a missing actor
    (system changes have none)."""
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=target._meta.label_lower,
        object_id=str(target.pk),
        object_repr=str(target)[:200],
        organisation_id=organisation_id,
        changes=changes or {},
    )


def model_changes(instance: models.Model, fields: list[str], old: dict[str, Any]) -> dict[str, Any]:
    """The fields whose value differs from `old`, as {field: [old, new]} of strings."""
    result: dict[str, Any] = {}
    for name in fields:
        new_value = getattr(instance, name, None)
        if old.get(name) != new_value:
            result[name] = [_plain(old.get(name)), _plain(new_value)]
    return result


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, models.Model):
        return value.pk
    return str(value)
