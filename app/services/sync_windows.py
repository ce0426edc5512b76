"""The date range a sync run asks its package for: :func:`sync_window`.

The link's history choice (:class:`app.models.dossier.History`, chosen at set-up) sets where
the window starts:

* ``transfer_date``: at the link's transfer date; a link without one (replace, re-establish)
  starts at 1 January of the current year;
* ``previous_year`` (the default, and the window Firmsync always used): at 1 January two years
  back, so the current year and at least the previous full year are there (comparatives),
  whatever month the file's fiscal year starts in. A link with a transfer date starts at it:
  the figures before it are the file's own, kept (they are the comparatives);
* ``all``: all the package has, at most :data:`ALL_HISTORY_YEARS` years back (1 January), also
  before a transfer date (read for the opening balance only).

Data dated before a transfer date is never written (it is kept); what the window reads before
it only feeds the opening balance. The window ends today and lists every month end in it (a
superset of any reporting frequency's period ends).
"""
from datetime import date, timedelta

from app.models.base import utcnow
from app.models.dossier import History
from connectors.base import SyncWindow

#: "all the package has" reads this many years back at most (the longest legal retention of
#: accounting records among the firms' countries is ten years)
ALL_HISTORY_YEARS = 10


def history_start(link, today=None):
    """The first day :func:`sync_window` asks for, for ``link`` (see the module docstring)."""
    today = today or utcnow().date()
    choice = getattr(link, "history", None) or History.PREVIOUS_YEAR
    if choice == History.TRANSFER_DATE:
        return link.valid_from or date(today.year, 1, 1)
    if choice == History.ALL:
        start = date(today.year - ALL_HISTORY_YEARS, 1, 1)
        return min(start, link.valid_from) if link.valid_from else start
    return link.valid_from or date(today.year - 2, 1, 1)


def sync_window(link, today=None):
    """The date range a run of ``link`` asks for: from :func:`history_start` to today, with every
    month end in it (a superset of any reporting frequency's period ends)."""
    today = today or utcnow().date()
    start = history_start(link, today)
    period_ends, year, month = [], start.year, start.month
    while True:
        first_next = date(year + month // 12, month % 12 + 1, 1)
        end = first_next - timedelta(days=1)
        if end > today:
            break
        period_ends.append(end)
        year, month = first_next.year, first_next.month
    return SyncWindow(start=start, end=today, period_ends=tuple(period_ends))
