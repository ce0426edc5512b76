"""Column formatters shared by the console's list and detail pages.

Flask-Admin calls a formatter as ``formatter(view, context, model, name)``; every value
is escaped before it is wrapped in markup.
"""
from flask_babel import gettext
from markupsafe import Markup, escape

#: status -> Bootstrap 4 badge colour
BADGE_COLOURS = {
    "succeeded": "success",
    "active": "success",
    "running": "info",
    "queued": "secondary",
    "deferred": "warning",
    "needs_reconnect": "warning",
    "failed": "danger",
    "cancelled": "dark",
    "disabled": "dark",
}

#: status -> words for an accountant
STATUS_LABELS = {
    "succeeded": "Synced",
    "active": "Active",
    "running": "Syncing",
    "queued": "Queued",
    "deferred": "Waiting for the package",
    "needs_reconnect": "Needs reconnect",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "disabled": "Disabled",
}


def badge(status):
    """A coloured badge for a sync or connection status (``None`` -> "never synced")."""
    if not status:
        return Markup(f'<span class="badge badge-light fs-status">{escape(gettext("Never synced"))}</span>')
    colour = BADGE_COLOURS.get(status, "secondary")
    label = gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status  # catalogs: app/translations
    return Markup(f'<span class="badge badge-{colour} fs-status" data-status="{escape(status)}">{escape(label)}</span>')


def status_badge(view, context, model, name):
    return badge(getattr(model, name))


def timestamp(value, empty=None):
    """``YYYY-MM-DD HH:MM UTC`` or ``empty`` (by default "never", translated)."""
    if value:
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return gettext("never") if empty is None else empty


def when(view, context, model, name):
    return timestamp(getattr(model, name))


def yes_no(view, context, model, name):
    return gettext("yes") if getattr(model, name) else gettext("no")


def duration(seconds):
    """``1 h 02 min``, ``3 min 05 s``, ``12 s``; empty when unknown."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"
