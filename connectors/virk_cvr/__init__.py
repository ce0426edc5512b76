"""Virk, the Danish CVR register: company master data by CVR number.

An administration package at firm level. HTTP basic credentials issued by the Danish Business
Authority (Erhvervsstyrelsen); the Elasticsearch query DSL posted as plain HTTP to the
company index ``/cvr-permanent/virksomhed/_search`` (the server answers like Elasticsearch 6:
``hits.total`` an integer, ``_type: _doc``; the official Python client's product check would
refuse it, so requests posts the JSON itself). The reference is the 8-digit CVR number, typed
and looked up before a file is linked (:meth:`VirkCvr.lookup_reference`). Facts:
``../shared/docs/CONNECTORS.md`` sections 18 and 26; notes and decisions:
connectors/virk_cvr/README.md.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from marshmallow import Schema, fields

from connectors import parsing
from connectors.auth import Basic
from connectors.base import (
    ADMINISTRATION, FIRM, CheckResult, CompanyProfileRecord, CompanyRef, ConfigError, Connector, ConnectorSpec,
    DataError, NotFoundError, RateBudget, Stream,
)

NAME = "Virk (CVR)"
API_URL = "http://distribution.virk.dk"
DOCS_URL = "https://datacvr.virk.dk/artikel/system-til-system-adgang-til-cvr-data"
SEARCH_PATH = "/cvr-permanent/virksomhed/_search"
_CVR = re.compile(r"^[1-9]\d{7}$")
#: the officer functions (``FUNKTION``) read as the company's management; owners come from EJERREGISTER
OFFICER_ORGANISATIONS = ("LEDELSESORGAN", "FULDT_ANSVARLIG_DELTAGERE", "REVISION")
OWNER_REGISTER = "EJERREGISTER"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class VirkCvrConfig(Schema):
    """The connection form: the user name and password the Danish Business Authority issued."""

    username = fields.String(required=True, metadata={"label": "User name"})
    password = fields.String(required=True, metadata={"secret": True, "label": "Password"})
    base_url = fields.Url(load_default=API_URL, require_tld=False, metadata={"label": "Register address"})


def normalise_cvr(value):
    """A CVR number: 8 digits, the first not 0; spaces and a leading "DK" are dropped. Else :class:`ConfigError`."""
    text = re.sub(r"[\s.\-]", "", str(value or "")).upper().removeprefix("DK")
    if not _CVR.match(text):
        raise ConfigError(f"\u201c{value}\u201d is not a CVR number. A CVR number has 8 digits and does not start "
                          "with 0 (for example 25313763).")
    return text


def _current(values):
    """The value in force now: ``periode.gyldigTil`` empty; the latest update wins when several are open
    (``sidstOpdateret`` mixes ``+01:00``, ``+02:00`` and ``Z``: compared in UTC)."""
    open_ = [v for v in values or [] if isinstance(v, dict) and not (v.get("periode") or {}).get("gyldigTil")]
    if not open_:
        return None

    def updated(value):
        stamp = value.get("sidstOpdateret")
        return parsing.moment(stamp, "update time", NAME) if stamp else _EPOCH
    return max(open_, key=updated)


def attribute(attributes, kind):
    """The current ``vaerdi`` of the attribute of ``type`` ``kind`` (None when absent or ended)."""
    for item in attributes or []:
        if isinstance(item, dict) and item.get("type") == kind:
            found = _current(item.get("vaerdier"))
            return found.get("vaerdi") if found else None
    return None


def month_day(value, field):
    """A gMonthDay (``"--06-30"``) -> ``"06-30"``; None when absent."""
    if value in (None, ""):
        return None
    match = re.fullmatch(r"--(\d{2})-(\d{2})", str(value).strip())
    if not match or not (1 <= int(match.group(1)) <= 12 and 1 <= int(match.group(2)) <= 31):
        raise DataError(f"{NAME} sent a {field} that is not a day and month ({str(value)[:40]!r}).")
    return f"{match.group(1)}-{match.group(2)}"


def address(data):
    """``nyesteBeliggenhedsadresse`` with Firmsync's field names."""
    data = data or {}
    number = "".join(str(data.get(k) or "") for k in ("husnummerFra", "bogstavFra"))
    line_1 = " ".join(part for part in (parsing.text(data.get("vejnavn")), number) if part)
    floor = ", ".join(parsing.text(data.get(k)) for k in ("etage", "sidedoer") if data.get(k))
    parts = {"line_1": line_1, "line_2": floor or parsing.text(data.get("conavn")) or None,
             "city": parsing.text(data.get("postdistrikt")) or parsing.text(data.get("bynavn")),
             "postal_code": str(data.get("postnummer") or ""), "country": parsing.text(data.get("landekode"))}
    return {key: value for key, value in parts.items() if value}


def _name(participant):
    current = _current((participant or {}).get("navne"))
    return parsing.text(current.get("navn")) if current else ""


def people(relations):
    """``(officers, shareholders)`` from ``deltagerRelation``: current functions and current ownership only."""
    officers, owners = [], []
    for relation in relations or []:
        person = _name(relation.get("deltager"))
        for organisation in relation.get("organisationer") or []:
            names = [n.get("navn") for n in organisation.get("organisationsNavn") or []]
            for member in organisation.get("medlemsData") or []:
                attributes = member.get("attributter") or []
                if organisation.get("hovedtype") in OFFICER_ORGANISATIONS:
                    for item in attributes:
                        if item.get("type") != "FUNKTION":
                            continue
                        current = _current(item.get("vaerdier"))
                        if current and not person:
                            raise DataError(f"{NAME} sent an officer without a current name.")
                        if current:
                            officers.append({"name": person, "role": parsing.text(current.get("vaerdi")).capitalize(),
                                             "start": (current.get("periode") or {}).get("gyldigFra"), "end": None})
                elif OWNER_REGISTER in names:
                    share = attribute(attributes, "EJERANDEL_PROCENT")
                    if share not in (None, ""):
                        percentage = parsing.amount(share, "ownership share", NAME) * 100
                        owners.append({"name": person, "share": None, "shares": None,
                                       "percentage": f"{percentage.normalize():f}"})
    return officers, owners


def profile_record(company):
    """A :class:`CompanyProfileRecord` from a ``Vrvirksomhed`` document."""
    if not isinstance(company, dict) or not isinstance(company.get("virksomhedMetadata"), dict):
        raise DataError(f"{NAME} sent a company without its metadata.")
    meta = company["virksomhedMetadata"]
    name = parsing.text((meta.get("nyesteNavn") or {}).get("navn"))
    cvr = str(company.get("cvrNummer") or "")
    if not name or not _CVR.match(cvr):
        raise DataError(f"{NAME} sent a company without its name or CVR number.")
    form = meta.get("nyesteVirksomhedsform") or {}
    industry = meta.get("nyesteHovedbranche") or {}
    attributes = company.get("attributter") or []
    amount = attribute(attributes, "KAPITAL")
    officers, owners = people(company.get("deltagerRelation"))
    return CompanyProfileRecord(
        name=name,
        registration_number=cvr,
        # Danish VAT numbers are "DK" + the CVR number (CONNECTORS.md section 18)
        vat_number=f"DK{cvr}",
        legal_form=parsing.text(form.get("langBeskrivelse") or form.get("kortBeskrivelse")) or None,
        status=parsing.text(meta.get("sammensatStatus")) or None,
        address=address(meta.get("nyesteBeliggenhedsadresse")),
        incorporation_date=parsing.optional_day(meta.get("stiftelsesDato"), "founding date", NAME),
        # REGNSKABSÅR_SLUT may be missing: attributter can be empty (CONNECTORS.md section 26)
        fiscal_year_end=month_day(attribute(attributes, "REGNSKABSÅR_SLUT"), "fiscal year end"),
        capital={"amount": f"{parsing.amount(amount, 'capital', NAME):.2f}",
                 "currency": (attribute(attributes, "KAPITALVALUTA") or "DKK").upper()} if amount else None,
        officers=tuple(officers),
        shareholders=tuple(owners),
        extra={key: value for key, value in {
            "industry": " ".join(str(industry.get(k)) for k in ("branchekode", "branchetekst") if industry.get(k)),
            "fiscal_year_start": month_day(attribute(attributes, "REGNSKABSÅR_START"), "fiscal year start"),
        }.items() if value},
    )


class CompanyProfile(Stream):
    name, record_type, primary_key = "company_profile", CompanyProfileRecord, "registration_number"

    def records(self, state, window):
        register = self.connector
        yield profile_record(register.company(register.cvr_number()))


class VirkCvr(Connector):
    spec = ConnectorSpec(
        key="virk_cvr",
        display_name=NAME,
        kind=ADMINISTRATION,
        level=FIRM,
        # HTTP basic with the issued user name and password (CONNECTORS.md section 18)
        auth=Basic(username_field="username", password_field="password"),
        config_schema=VirkCvrConfig,
        api_version="6",
        docs_url=DOCS_URL,
        # no published limit: a modest one per user, small searches (CONNECTORS.md section 18 "Limits")
        rate_budget=RateBudget(per_minute=60, per="key"),
        reference_label="CVR number",
        reference_typed=True,
        vendor_hosts=("distribution.virk.dk",),
        sandbox_config={"base_url": "{sandbox}/virk", "username": "virk-user", "password": "virk-password"},
    )
    streams = (CompanyProfile,)

    @property
    def base_url(self):
        return (self.config.get("base_url") or API_URL).rstrip("/")

    @staticmethod
    def error_message(response):
        """Elasticsearch errors ``{"error": {"type", "reason"}, "status"}``; 401/403 in an administrator's words."""
        if response.status_code in (401, 403):
            return ("The CVR register refused the user name and password (revoked or mistyped). An administrator "
                    "must enter the credentials the Danish Business Authority issued.")
        try:
            body = response.json()
        except ValueError:
            return None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return str(error.get("reason") or error.get("type") or "")[:300] or None
        return str(error)[:300] if error else None

    def search(self, body):
        """POST a query to the company index; answer the hits (``hits.total`` an integer or ``{"value"}``)."""
        response = self.request("POST", f"{self.base_url}{SEARCH_PATH}", json=body)
        answer = self.http.json_of(response)
        hits = answer.get("hits") if isinstance(answer, dict) else None
        if not isinstance(hits, dict) or not isinstance(hits.get("hits"), list):
            raise DataError(f"{NAME} sent an answer without search hits.")
        return hits["hits"]

    def cvr_number(self, reference=None):
        return normalise_cvr(reference if reference is not None else self.reference)

    def company(self, cvr):
        hits = self.search({"query": {"term": {"Vrvirksomhed.cvrNummer": int(cvr)}}, "size": 1})
        if not hits:
            raise NotFoundError(f"The CVR register has no company with CVR number {cvr}.")
        document = (hits[0].get("_source") or {}).get("Vrvirksomhed") if isinstance(hits[0], dict) else None
        if not isinstance(document, dict):
            raise DataError(f"{NAME} sent a hit without its Vrvirksomhed document.")
        return document

    # -- contract ----------------------------------------------------------------------
    def check(self):
        self.search({"query": {"match_all": {}}, "size": 0})
        return CheckResult(True, "Connected to the CVR register: the user name and password work. "
                                 "Link a file by typing its CVR number.")

    def list_references(self):
        # the register has no listing for a firm: the reference is typed (see lookup_reference)
        return [self.lookup_reference(self.reference)] if self.reference else []

    def lookup_reference(self, reference):
        cvr = self.cvr_number(reference)
        company = self.company(cvr)
        meta = company.get("virksomhedMetadata") or {}
        return CompanyRef(cvr, parsing.text((meta.get("nyesteNavn") or {}).get("navn")) or cvr, {
            "status": meta.get("sammensatStatus"),
            "legal_form": (meta.get("nyesteVirksomhedsform") or {}).get("kortBeskrivelse"),
        })
