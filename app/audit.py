"""Writing audit events. Secret values never enter the trail."""
from app.extensions import db
from app.models import AuditEvent

SECRET_MARK = "(changed)"


def record(actor, action, obj=None, *, object_type=None, object_id=None, firm_id=None,
           dossier_id=None, summary="", changes=None):
    """Add an :class:`AuditEvent` to the session (committed with the caller's transaction).

    ``actor`` may be None for system actions (nightly sync). ``changes`` is
    ``{field: [old, new]}``; pass secret fields already masked with :data:`SECRET_MARK`.
    """
    if obj is not None:
        object_type = object_type or type(obj).__name__
        object_id = object_id or (str(obj.id) if getattr(obj, "id", None) is not None else None)
        firm_id = firm_id or getattr(obj, "firm_id", None)
        if dossier_id is None:
            dossier_id = obj.id if type(obj).__name__ == "Dossier" else getattr(obj, "dossier_id", None)
    event = AuditEvent(
        firm_id=firm_id if firm_id is not None else (actor.firm_id if actor else None),
        user_id=actor.user_id if actor else None,
        dossier_id=dossier_id,
        action=action,
        object_type=object_type or "",
        object_id=object_id,
        summary=summary[:500],
        changes=_jsonable(changes or {}),
    )
    db.session.add(event)
    return event


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
