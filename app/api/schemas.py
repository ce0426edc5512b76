"""Marshmallow schemas of the public API: they shape every answer and generate the OpenAPI document.

Amounts are decimal strings (``"1234.50"``), dates ISO 8601 (``2025-12-31``), moments ISO 8601
in UTC with a ``Z``. No schema has a field for a secret.
"""
from datetime import timezone

from marshmallow import Schema, fields, validate

from app.models import RunStatus


class UtcDateTime(fields.DateTime):
    """A stored (naive, UTC) moment written as ISO 8601 with ``Z``; read back as naive UTC."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc, microsecond=0).isoformat().replace("+00:00", "Z")

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment


def Amount(**kwargs):
    """A money amount as a decimal string (never a float)."""
    metadata = {"type": "string", "format": "decimal",
                "pattern": r"^-?\d+\.\d{2}$", "example": "1234.50"}
    return fields.Decimal(as_string=True, places=2, metadata=metadata, **kwargs)


# ---------------------------------------------------------------- query arguments

class ListArgs(Schema):
    """Cursor pagination and incremental pulls, shared by every list."""

    cursor = fields.String(metadata={"description": "The `next_cursor` of the previous page."},
                           validate=validate.Length(max=100))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500),
                           metadata={"description": "Items per page (1-500)."})
    updated_since = UtcDateTime(metadata={"description": "Only what changed at or after this moment "
                                                         "(pass the `as_of` of your previous pull)."})


class LedgerLineArgs(ListArgs):
    period_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    account_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    date_from = fields.Date()
    date_to = fields.Date()


class BalanceArgs(ListArgs):
    period_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))


class SyncRunArgs(ListArgs):
    dossier_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    status = fields.String(validate=validate.OneOf(RunStatus.ALL))


class TrialBalanceArgs(Schema):
    date = fields.Date(required=True, metadata={"description": "The trial balance at the end of the period "
                                                               "holding this date."})


class SyncRequest(Schema):
    dossier_ids = fields.List(fields.Integer(validate=validate.Range(min=1, max=2**31 - 1)), required=True,
                              validate=validate.Length(min=1, max=500))


# ---------------------------------------------------------------- resources

class LinkSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    connection_id = fields.Integer()
    reference = fields.String()
    reference_name = fields.String(allow_none=True)
    scenario = fields.String()
    valid_from = fields.Date(allow_none=True)


class DossierSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    number = fields.String(allow_none=True)
    company_number = fields.String(allow_none=True)
    vat_number = fields.String(allow_none=True)
    country = fields.String()
    currency = fields.String()
    frequency = fields.String()
    sync_status = fields.String(allow_none=True)
    last_synced_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    links = fields.Method("active_links", metadata={"description": "The active links (at most one per kind).",
                                                    "type": "array", "items": {"$ref": "#/components/schemas/Link"}})

    def active_links(self, dossier):
        return LinkSchema(many=True).dump([link for link in dossier.links if link.active])


class FiscalYearSchema(Schema):
    id = fields.Integer()
    dossier_id = fields.Integer()
    start = fields.Date()
    end = fields.Date()
    locked = fields.Boolean()


class PeriodSchema(Schema):
    id = fields.Integer()
    dossier_id = fields.Integer()
    fiscal_year_id = fields.Integer()
    start = fields.Date()
    end = fields.Date()


class AccountSchema(Schema):
    id = fields.Integer()
    dossier_id = fields.Integer()
    number = fields.String()
    name = fields.String()
    kind = fields.String()
    updated_at = UtcDateTime(allow_none=True, metadata={"description": "When a sync inserted or last changed the row"})


class BalanceSchema(Schema):
    id = fields.Integer()
    dossier_id = fields.Integer()
    account_id = fields.Integer()
    period_id = fields.Integer()
    amount = Amount()
    updated_at = UtcDateTime(allow_none=True, metadata={"description": "When a sync inserted or last changed the row"})


class LedgerLineSchema(Schema):
    id = fields.Integer()
    dossier_id = fields.Integer()
    account_id = fields.Integer()
    period_id = fields.Integer()
    booking_date = fields.Date()
    amount = Amount()
    description = fields.String()
    reference = fields.String()
    journal = fields.String()
    source_id = fields.String()
    modified_at = UtcDateTime(allow_none=True)
    updated_at = UtcDateTime(allow_none=True, metadata={"description": "When a sync inserted or last changed the row"})


class CompanyProfileSchema(Schema):
    id = fields.Integer()
    dossier_id = fields.Integer()
    version = fields.Integer()
    data = fields.Dict()
    fetched_at = UtcDateTime()


class ConnectionSchema(Schema):
    """A connection without any secret: no credentials, no configuration values."""

    id = fields.Integer()
    package = fields.String()
    kind = fields.String()
    level = fields.String()
    name = fields.String()
    status = fields.String()
    owner_dossier_id = fields.Integer(allow_none=True)
    last_check_at = UtcDateTime(allow_none=True)
    last_check_ok = fields.Boolean(allow_none=True)
    updated_at = UtcDateTime()


class SyncRunSchema(Schema):
    id = fields.Integer()
    dossier_id = fields.Integer()
    link_id = fields.Integer()
    trigger = fields.String()
    status = fields.String()
    attempt = fields.Integer()
    accounts_count = fields.Integer()
    balances_count = fields.Integer()
    lines_inserted = fields.Integer()
    lines_updated = fields.Integer()
    lines_deleted = fields.Integer()
    api_calls = fields.Integer()
    progress_stream = fields.String(allow_none=True)
    progress_records = fields.Integer()
    progress_percent = fields.Integer(allow_none=True)
    error_category = fields.String(allow_none=True)
    message = fields.String(allow_none=True)
    queued_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)
    resume_at = UtcDateTime(allow_none=True)


class TrialBalanceRowSchema(Schema):
    account_id = fields.Integer(allow_none=True)
    number = fields.String()
    name = fields.String()
    kind = fields.String()
    balance = Amount()
    comparative = Amount(allow_none=True)


class TrialBalanceSchema(Schema):
    dossier_id = fields.Integer()
    date = fields.Date()
    period_end = fields.Date(allow_none=True)
    comparative_period_end = fields.Date(allow_none=True)
    rows = fields.List(fields.Nested(TrialBalanceRowSchema))


class SyncOutcomeSchema(Schema):
    runs = fields.List(fields.Nested(SyncRunSchema))
    skipped_dossier_ids = fields.List(fields.Integer(), metadata={"description": "Files without a sync set up."})


def page_schema(item_schema, name):
    """The envelope of a list: ``data``, ``next_cursor`` (null on the last page) and ``as_of``."""
    return Schema.from_dict({
        "data": fields.List(fields.Nested(item_schema)),
        "next_cursor": fields.String(allow_none=True),
        "as_of": UtcDateTime(metadata={"description": "Server time when the pull started: the next "
                                                      "`updated_since`."}),
    }, name=name)
