"""Times shown in the viewer's firm's time zone (docs/console.md, "Times and time zones").

Stored timestamps are naive UTC (:func:`app.models.base.utcnow`); the console, the portal and
the file page show them in the time zone of the firm the viewer works in, with its
abbreviation: ``2026-12-06 04:14 CET``. Support staff, who work across firms, see UTC unless
they picked a firm with the firm picker (dashboard, Files list). The API keeps ISO 8601 UTC.

* :func:`viewer_zone`: the zone of the current request's viewer (computed once per request);
* :func:`local_time`: a stored timestamp as ``YYYY-MM-DD HH:MM <abbreviation>`` in a zone;
* :func:`zone_choices`: the time zones an administrator may choose for the firm.
"""
from datetime import timezone
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import has_request_context, request, session

from app.access import current_actor
from app.extensions import db
from app.models import Firm

UTC = ZoneInfo("UTC")
#: the session key of the firm support staff picked with the firm picker (read by
#: ``admin_views.dossiers.picked_firm_id`` too)
SUPPORT_PICKED_FIRM_KEY = "support_firm_id"
#: where the viewer's zone is kept for the rest of the request (not ``flask.g``, which
#: outlives a request when an app context was already pushed)
_ENVIRON_KEY = "firmsync.viewer_zone"


@cache
def zone_names():
    """The IANA time zone names a firm may use (``Area/City`` and ``UTC``), sorted."""
    return tuple(sorted(name for name in available_timezones() if "/" in name or name == "UTC"))


def zone_choices():
    """``[(name, name)]`` of :func:`zone_names`: the choices of the Firm screen's time zone."""
    return [(name, name) for name in zone_names()]


def is_zone(name):
    """Is ``name`` one of the time zones a firm may use?"""
    return name in zone_names()


def zone_of(name):
    """The :class:`ZoneInfo` called ``name``; UTC when ``name`` is empty or unknown."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def firm_zone(firm_id):
    """The time zone of firm ``firm_id`` (UTC when there is no such firm)."""
    if firm_id is None:
        return UTC
    firm = db.session.get(Firm, firm_id)  # no statement when the request already loaded it
    return zone_of(firm.timezone if firm is not None else None)


def viewer_zone():
    """The time zone the current request shows times in: the viewer's firm's; for support
    staff the firm they picked, else UTC; UTC outside a request or for an anonymous visitor."""
    if not has_request_context():
        return UTC
    zone = request.environ.get(_ENVIRON_KEY)
    if zone is None:
        actor = current_actor()
        if actor is None:
            zone = UTC
        elif actor.is_support:
            picked = session.get(SUPPORT_PICKED_FIRM_KEY)
            zone = firm_zone(picked) if isinstance(picked, int) else UTC
        else:
            zone = firm_zone(actor.firm_id)
        request.environ[_ENVIRON_KEY] = zone
    return zone


def in_zone(value, zone=None):
    """The naive UTC ``value`` as an aware datetime in ``zone`` (default: :func:`viewer_zone`)."""
    return value.replace(tzinfo=timezone.utc).astimezone(zone or viewer_zone())


def local_time(value, empty="", zone=None):
    """``YYYY-MM-DD HH:MM CET``: the naive UTC ``value`` in ``zone`` (default: the viewer's),
    with the zone's abbreviation for that moment (CET in winter, CEST in summer); ``empty``
    when ``value`` is None."""
    if not value:
        return empty
    local = in_zone(value, zone)
    return f"{local:%Y-%m-%d %H:%M} {local:%Z}"


def init_app(app):
    """Offer :func:`local_time` to every template (the portal, pages outside the console's views)."""
    app.jinja_env.globals.update(local_time=local_time)
