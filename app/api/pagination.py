"""Keyset (cursor) pagination: pages ordered by id, the cursor names the last id served.

Ids only grow, and a row keeps its id when it changes, so a page boundary never moves
while others write: a row inserted during a pull comes on a later page (or in the next
``updated_since`` pull), none is served twice, none skipped. Any page costs one index range
scan, however deep the cursor.
"""
import base64
import binascii

from flask_smorest import abort

from app.models.base import utcnow

CURSOR_VERSION = "v1"


def encode_cursor(last_id):
    return base64.urlsafe_b64encode(f"{CURSOR_VERSION}:{int(last_id)}".encode()).decode().rstrip("=")


def decode_cursor(text):
    """The last id a cursor names; a cursor that is not one of ours answers 400."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        version, _, last = raw.partition(":")
        if version != CURSOR_VERSION or not last.isdigit() or int(last) > 2**63:
            raise ValueError(raw)
        return int(last)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        abort(400, message="This cursor is not one Firmsync gave: start again without a cursor.")


def page(session, query, id_column, args):
    """One page of ``query`` (a SELECT of model rows) after ``args["cursor"]``: the envelope dict."""
    as_of = utcnow()
    if args.get("cursor"):
        query = query.where(id_column > decode_cursor(args["cursor"]))
    limit = args["limit"]
    rows = session.scalars(query.order_by(id_column).limit(limit + 1)).unique().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": rows, "next_cursor": encode_cursor(rows[-1].id) if more else None, "as_of": as_of}
