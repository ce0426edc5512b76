"""Vendor values to plain ones, at the edge (CONNECTORS.md section 2, note 4).

One set of parsers for every package: amounts (numbers, strings, formatted strings) to
:class:`Decimal`, MS-JSON and the vendors' other date shapes to ``date``/aware UTC
``datetime``, and padded strings to clean ones. A value that cannot be read is a
:class:`DataError` whose message names the package and the field, for an accountant.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from connectors.errors import DataError

_MS_JSON = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: date and date-time shapes the vendors send besides ISO 8601 and MS-JSON
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y", "%d-%m-%Y", "%Y%m%d")


def _show(value):
    return repr(str(value)[:40])


def amount(value, field, package, *, decimal_comma=False):
    """An amount -> :class:`Decimal`, never through a binary float.

    Takes JSON numbers (ints, :class:`Decimal` from :meth:`connectors.http.HttpClient.json_of`,
    floats through their shortest text), strings with padding and thousands separators
    (``" 72,893.84 "``; with ``decimal_comma`` ``"72.893,84"``), and ``None``/``""`` as zero.
    Booleans, text, NaN and infinities are a :class:`DataError`.
    """
    if type(value) is Decimal and value.is_finite():  # most JSON amounts (HttpClient.json_of)
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal("0")
    if isinstance(value, bool):
        raise DataError(f"{package} sent a {field} that is not an amount ({_show(value)}).")
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if isinstance(value, str):
        text = text.replace(".", "").replace(",", ".") if decimal_comma else text.replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise DataError(f"{package} sent a {field} that is not an amount ({_show(value)}).") from None
    if not number.is_finite():
        raise DataError(f"{package} sent a {field} that is not an amount ({_show(value)}).")
    return number


def ms_json_datetime(value, field, package):
    """``/Date(1539993600000+0000)/`` (milliseconds since 1970, UTC) -> aware UTC datetime.

    The offset suffix only says which zone the server was in: the milliseconds are UTC.
    """
    match = _MS_JSON.match(str(value or "").strip())
    if not match:
        raise DataError(f"{package} sent a {field} that is not a date ({_show(value)}).")
    return _EPOCH + timedelta(milliseconds=int(match.group(1)))


def ms_json_date(value, field, package):
    """``/Date(ms)/`` -> :class:`date` (the vendors store dates as midnight UTC)."""
    return ms_json_datetime(value, field, package).date()


def moment(value, field, package):
    """A date-time in any of the vendors' shapes -> aware UTC :class:`datetime`.

    ISO 8601 with or without offset or ``Z`` (no offset: UTC), MS-JSON, and
    :data:`DATE_FORMATS` (``2020-02-08 14:55:00.000``).
    """
    text = str(value or "").strip()
    if text.startswith("/Date("):
        return ms_json_datetime(text, field, package)
    parsed = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for shape in DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, shape)
                break
            except ValueError:
                continue
    if parsed is None or not text:
        raise DataError(f"{package} sent a {field} that is not a date and time ({_show(value)}).")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def day(value, field, package):
    """A date in any of the vendors' shapes -> :class:`date` (a date-time's own calendar day).

    ``2024-03-31``, ``2024-03-31T00:00:00``, ``2024-03-31T00:00:00+02:00`` (the day as
    written, not shifted to UTC), MS-JSON, and :data:`DATE_FORMATS`.
    """
    text = str(value or "").strip()
    if text.startswith("/Date("):
        return ms_json_date(text, field, package)
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    for shape in DATE_FORMATS:
        try:
            return datetime.strptime(text, shape).date()
        except ValueError:
            continue
    raise DataError(f"{package} sent a {field} that is not a date ({_show(value)}).")


def optional_day(value, field, package):
    """:func:`day`, with ``None`` and ``""`` staying ``None``."""
    return None if value in (None, "") else day(value, field, package)


def optional_iso_day(value, field, package):
    """:func:`optional_day` as ``"YYYY-MM-DD"`` (how company records keep dates), or None."""
    found = optional_day(value, field, package)
    return found.isoformat() if found else None


def month_day(value, field, package):
    """A day and month without a year ("31/12", "31-12", "12-31", "--12-31") as ``"MM-DD"``; None when absent."""
    if value in (None, ""):
        return None
    match = re.fullmatch(r"(\d{1,2})-(\d{1,2})", str(value).strip().lstrip("-").replace("/", "-").replace(".", "-"))
    first, second = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    month, day_of_month = (second, first) if first > 12 else (first, second)
    if not (1 <= month <= 12 and 1 <= day_of_month <= 31):
        raise DataError(f"{package} sent a {field} that is not a day and month ({str(value)[:40]!r}).")
    return f"{month:02d}-{day_of_month:02d}"


def text(value):
    """A string without the padding some vendors send (``"FR "``, ``"   400000"``); ``None`` -> ``""``."""
    return "" if value is None else str(value).strip()
