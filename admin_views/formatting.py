"""Column formatters shared by the console's list and detail pages.

Flask-Admin calls a formatter as ``formatter(view, context, model, name)``; every value
is escaped before it is wrapped in markup.
"""
from flask_babel import gettext
from markupsafe import Markup, escape

from app.services.response_stages import waiting_for
from app.time_zones import local_time

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


def uploaded_badge(uploaded_at):
    """The status of a manual file that got figures by upload: "Last uploaded <time>" (in the
    viewer's time zone), in place of "Never synced" (:mod:`app.services.manual_files`)."""
    label = gettext("Last uploaded %(time)s", time=timestamp(uploaded_at))
    return Markup(f'<span class="badge badge-light fs-status fs-uploaded" data-status="uploaded">{escape(label)}</span>')


def status_badge(view, context, model, name):
    return badge(getattr(model, name))


def timestamp(value, empty=None, zone=None):
    """``YYYY-MM-DD HH:MM CET``: a stored (naive UTC) time in the viewer's firm's time zone
    (``zone`` if given; :func:`app.time_zones.viewer_zone`), or ``empty`` (by default "never",
    translated)."""
    if value:
        return local_time(value, zone=zone)
    return gettext("never") if empty is None else empty


def when(view, context, model, name):
    """Flask-Admin column formatter: the column's time as :func:`timestamp` shows it."""
    return timestamp(getattr(model, name))


def run_message(run):
    """A sync run's message for the viewer: a parked run's "Waiting for <package>'s API budget;
    resumes at <time>" (written by the job in English, UTC) in the viewer's language and time
    zone (docs/sync-engine.md "Parking"); any other message as the job wrote it."""
    message = getattr(run, "message", None)
    package = waiting_for(message) if getattr(run, "status", None) == "deferred" else None
    if package and run.resume_at is not None:
        return gettext("Waiting for %(package)s's API budget; resumes at %(time)s.", package=package,
                       time=timestamp(run.resume_at))
    return message


def yes_no(view, context, model, name):
    return gettext("yes") if getattr(model, name) else gettext("no")


def duration(seconds):
    """``1 h 02 min``, ``3 min 05 s``, ``12 s``; empty when unknown."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return gettext("%(hours)s h %(minutes)02d min", hours=seconds // 3600, minutes=seconds % 3600 // 60)
    if seconds >= 60:
        return gettext("%(minutes)s min %(seconds)02d s", minutes=seconds // 60, seconds=seconds % 60)
    return gettext("%(seconds)s s", seconds=seconds)
