"""Connection forms built from a connector's marshmallow ``config_schema``.

Adding a package needs no console change: each schema field becomes a form field
(strings, e-mails, URLs, numbers, dates, booleans, choices from ``validate.OneOf``).
Fields marked ``metadata={"secret": True}`` are password inputs: write-only, never
rendered back; left blank on edit, they keep the stored value. The schema itself
validates the values (``schema.load``); its messages are shown on the fields and nothing
is written while any remain.
"""
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validate
from wtforms import BooleanField, DateField, DecimalField, EmailField, IntegerField, PasswordField, SelectField, StringField, URLField
from wtforms.validators import DataRequired, Length, Optional

from app.services.outbound import configured_urls, refusal


def is_secret(field):
    """Is this schema field a secret (stored encrypted, never shown)?"""
    return bool(field.metadata.get("secret"))


def _label(key, field):
    """The field's label in the reader's language (packages' labels are in the catalogs through
    :func:`app.i18n.extract_connector_labels`; one without a translation shows in English)."""
    return _l(field.metadata.get("label") or key.replace("_", " ").capitalize())


def _choices(field):
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            labels = validator.labels or validator.choices
            return [(str(c), str(label)) for c, label in zip(validator.choices, labels)]
    return None


def form_field(key, field, editing):
    """The WTForms field for one schema field."""
    label, description = _label(key, field), field.metadata.get("description", "")
    description = _l(description) if description else description
    if is_secret(field):
        if editing:
            description = _l("Stored encrypted. Leave blank to keep the current value.")
        return PasswordField(label, description=description)
    choices = _choices(field)
    if choices is not None:
        return SelectField(label, choices=[("", "—")] + choices, description=description)
    kinds = [
        (fields.Boolean, BooleanField), (fields.Integer, IntegerField), (fields.Decimal, DecimalField),
        (fields.Float, DecimalField), (fields.Date, DateField), (fields.Email, EmailField), (fields.Url, URLField),
    ]
    for schema_type, form_type in kinds:
        if isinstance(field, schema_type):
            validators = [] if form_type is BooleanField else [Optional()]
            return form_type(label, validators=validators, description=description)
    return StringField(label, description=description)


class ConnectionForm(FlaskForm):
    """Base of the generated connection forms; :attr:`spec` is set on each generated class.

    After :meth:`validate` succeeds, :attr:`config` holds the non-secret values and
    :attr:`secrets` the secret ones, both as the schema dumps them (JSON-ready).
    """

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)],
                       description=_l("How your firm calls this connection, e.g. “Exact – main office”."))
    spec = None

    def __init__(self, *args, stored=None, **kwargs):
        super().__init__(*args, **kwargs)
        #: the connection's current values (config and credentials), on edit
        self.stored = stored or {}
        self.config, self.secrets = {}, {}

    def schema_fields(self):
        return [(key, field) for key, field in self.spec.config_schema().fields.items()
                if not field.dump_only and key in self]

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        schema = self.spec.config_schema()
        data = {}
        for key, field in self.schema_fields():
            value = self[key].data
            if is_secret(field) and value in (None, ""):
                value = self.stored.get(key)
            if value in (None, ""):
                continue
            data[key] = value.isoformat() if isinstance(value, date) else str(value) if isinstance(value, Decimal) else value
        try:
            loaded = schema.load(data)
        except SchemaError as error:
            for key, messages in error.normalized_messages().items():
                target = self[key] if key in self else self.name
                target.errors = list(target.errors) + (messages if isinstance(messages, list) else [str(messages)])
            return False
        if not valid:
            return False
        dumped = schema.dump(loaded)
        secret_keys = {key for key, field in schema.fields.items() if is_secret(field)}
        self.config = {k: v for k, v in dumped.items() if k not in secret_keys}
        self.secrets = {k: v for k, v in dumped.items() if k in secret_keys}
        for key, url in configured_urls(self.spec, dumped).items():
            refused = refusal(self.spec, {key: url})
            if refused:
                target = self[key] if key in self else self.name
                target.errors = list(target.errors) + [refused]
                return False
        return True


def connection_form_class(spec, editing=False):
    """A :class:`ConnectionForm` subclass with one field per field of ``spec.config_schema``."""
    attrs = {"spec": spec}
    for key, field in spec.config_schema().fields.items():
        if not field.dump_only and key != "name":
            attrs[key] = form_field(key, field, editing)
    return type(f"{spec.key.title().replace('_', '')}ConnectionForm", (ConnectionForm,), attrs)


def settings_rows(spec, config):
    """``[(label, value)]``: a connection's stored settings as its form names them, for a page.

    Secret fields never appear (they are not in ``config`` either); a choice shows its label;
    a setting the package's schema no longer has shows under its key. ``spec`` may be None
    (a package no longer installed).
    """
    config = dict(config or {})
    schema_fields = spec.config_schema().fields if spec is not None else {}
    rows = []
    for key, field in schema_fields.items():
        if is_secret(field) or config.get(key) in (None, ""):
            config.pop(key, None)
            continue
        value = config.pop(key)
        if isinstance(value, bool):
            value = _l("yes") if value else _l("no")
        else:
            value = dict(_choices(field) or ()).get(str(value), value)
        rows.append((_label(key, field), value))
    rows.extend((key, value) for key, value in sorted(config.items()))
    return rows
