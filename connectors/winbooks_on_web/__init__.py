"""Winbooks On Web: firm-level package built from public information (docs/connectors.md,
"Undocumented packages"; notes in README.md).

An exchange token, e-mailed to the licence administrator, is exchanged once at
``OAuth20/Token`` (HTTP basic with the e-mail) for a bearer token of 15 minutes and a
rotating refresh token; the reference is a folder (company) code, typed by the user and
verified by reading its book years. Chart from ``GLAccounts``, fiscal years from
``BookYears``, ledger lines from ``GLTrans`` through ``ExecuteCriteria`` paged with the
``ContinuePath`` header; balances are aggregated from the lines by the engine.

Every vendor shape (paths, field names, paging, limits) is an entry of
:data:`assumptions.ASSUMPTIONS`, read here through :meth:`Connector.assumed`; an answer
those entries do not cover fails the run naming the field (:meth:`Connector.expect_fields`).

Vendor docs: https://help.winbooks.be/display/DEV (prose only).
"""
import base64
import hashlib
import time

from marshmallow import Schema, fields

from connectors import parsing
from connectors.auth import TokenExchange
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, CheckResult, CompanyRef, ConfigError, Connector, ConnectorSpec,
    DataError, FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget, RenewalRefused, Stream,
)

from .assumptions import ASSUMPTIONS

PACKAGE = "Winbooks On Web"
#: log in again this long before the access token ends
MARGIN_SECONDS = 60
#: a ContinuePath chain longer than this is a loop
MAX_PAGES = 100_000
RECONNECT = ("Winbooks On Web no longer accepts this connection's tokens. Ask the licence administrator for a new "
             "exchange token (Control Panel, Company, External applications) and enter it on the connection.")


class WinbooksConfig(Schema):
    base_url = fields.Url(require_tld=False, load_default=ASSUMPTIONS["base_url"].value,
                          metadata={"label": "API URL"})
    email = fields.Email(required=True, metadata={"label": "E-mail the exchange token was sent to"})
    exchange_token = fields.String(required=True, metadata={"secret": True, "label": "Exchange token"})
    folders = fields.String(load_default="", metadata={
        "label": "Folder codes (optional, comma separated)",
        "help": "Winbooks publishes no list of folders: the codes typed here are offered when a file is linked."})


def fingerprint(token):
    """A short digest of an exchange token: which one was used, without keeping it twice."""
    return hashlib.sha256(str(token).encode()).hexdigest()[:16]


def folder_codes(config):
    """The folder codes listed in the connection's ``folders`` setting."""
    return [code.strip() for code in str(config.get("folders") or "").replace(";", ",").split(",") if code.strip()]


class _WinbooksStream(Stream):
    """A stream reading one object model of the linked folder."""

    def rows(self, oms_name):
        return self.connector.list_rows(self.connector.assumed(oms_name))


class FiscalYears(_WinbooksStream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        names = self.connector.assumed("book_year_fields")
        for row in self.rows("book_years_oms"):
            self.connector.expect_fields(row, names.values(), "book year")
            yield FiscalYearRecord(start=parsing.day(row[names["start"]], "book year start", PACKAGE),
                                   end=parsing.day(row[names["end"]], "book year end", PACKAGE))


class Accounts(_WinbooksStream):
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        names = self.connector.assumed("account_fields")
        kinds = self.connector.assumed("account_kind_by_class")
        for row in self.rows("accounts_oms"):
            self.connector.expect_fields(row, names.values(), "GL account")
            number = parsing.text(row[names["number"]])
            yield AccountRecord(number=number, name=parsing.text(row[names["name"]]) or number,
                                kind=kinds.get(number[:1], "other"), source_id=number)


class LedgerLines(_WinbooksStream):
    """Every GLTrans line of the window (no modified-since filter is known: assumption
    ``ledger_incremental``); the writer keeps only what changed."""

    name, record_type, primary_key = "ledger_lines", LedgerLineRecord, "source_id"

    def records(self, state, window):
        books = self.connector
        names = books.assumed("ledger_fields")
        dates = books.assumed("ledger_date_filter")
        conditions = []
        if window.start:
            conditions.append(_condition(dates["property"], dates["ge"], window.start))
        if window.end:
            conditions.append(_condition(dates["property"], dates["le"], window.end))
        criteria = {"EntityType": books.assumed("ledger_entity_type"), "Alias": "this", "Conditions": conditions}
        required = [names[key] for key in ("id", "date", "account", "amount")]
        for row in books.criteria_rows(books.assumed("ledger_oms"), criteria):
            books.expect_fields(row, required, "ledger line")
            yield LedgerLineRecord(
                source_id=str(row[names["id"]]),
                booking_date=parsing.day(row[names["date"]], "booking date", PACKAGE),
                account=parsing.text(row[names["account"]]),
                amount=parsing.amount(row[names["amount"]], "amount", PACKAGE),
                description=parsing.text(row.get(names["description"])),
                reference=parsing.text(row.get(names["reference"])),
                journal=parsing.text(row.get(names["journal"])),
            )


def _condition(prop, operator, day):
    return {"Operator": operator, "PropertyName": prop, "OtherPropertyName": "", "Values": [day.isoformat()]}


class WinbooksOnWeb(Connector):
    spec = ConnectorSpec(
        key="winbooks_on_web",
        display_name=PACKAGE,
        kind=ACCOUNTING,
        level=FIRM,
        auth=TokenExchange(margin_seconds=MARGIN_SECONDS),
        config_schema=WinbooksConfig,
        api_version="v2 (unversioned REST)",
        docs_url="https://help.winbooks.be/display/DEV",
        rate_budget=RateBudget(per_minute=ASSUMPTIONS["rate_limit"].value["per_minute"], per="connection"),
        reference_label="folder",
        reference_typed=True,
        undocumented=True,
        assumptions=ASSUMPTIONS,
        sandbox_config={"base_url": "{sandbox}/winbooks", "email": "admin@demo.firmsync.test",
                        "exchange_token": "demo-exchange-token", "folders": "c-1001, c-1002"},
        vendor_hosts=("rapi.winbooksonweb.be", "*.winbooksapis.be", "*.winbooksonweb.be"),
    )
    streams = (FiscalYears, Accounts, LedgerLines)

    # -- auth: the exchange token once, then rotating refresh tokens --------------------
    def login(self):
        """An access token: the stored one while it lasts (first use only), else a refresh, else
        the exchange of the e-mailed token; new tokens are saved before they are used."""
        with (self.context.lock or _no_lock)():
            stored = self.context.load_credentials() if self.context.load_credentials else dict(self.credentials)
            first_use, self._logged_in = not getattr(self, "_logged_in", False), True
            exchange_token = self._exchange_token(stored)
            # a new exchange token typed on the connection starts over; the used one never is sent again
            exchanged = stored.get("exchanged") == fingerprint(exchange_token)
            expires_at = float(stored.get("expires_at") or 0)
            if first_use and exchanged and stored.get("access_token") and expires_at - time.time() > MARGIN_SECONDS:
                return stored["access_token"], expires_at - time.time()
            answer = None
            if exchanged and stored.get("refresh_token"):
                try:
                    answer = self._token_call(self.assumed("refresh_grant"), stored["refresh_token"])
                except RenewalRefused:
                    answer = None  # refused: the exchange token once more (refused too when it is single use)
            if answer is None:
                answer = self._token_call(self.assumed("exchange_grant"), exchange_token)
                stored = {key: value for key, value in stored.items() if key not in ("access_token", "refresh_token")}
            access, refresh, lifetime = (answer[name] for name in self.assumed("token_fields"))
            lifetime = float(lifetime)
            saved = {**stored, "access_token": access, "expires_at": time.time() + lifetime,
                     "exchanged": fingerprint(exchange_token),
                     "refresh_token": refresh if self.assumed("refresh_rotates") or not stored.get("refresh_token")
                     else stored["refresh_token"]}
            if self.context.save_credentials:
                self.context.save_credentials(saved)
            self.context.credentials = self.credentials = saved
            return access, lifetime

    def _exchange_token(self, stored):
        token = self.config.get("exchange_token") or stored.get("exchange_token")
        if not token:
            raise ConfigError("The Winbooks On Web connection has no exchange token.")
        return token

    def _token_call(self, grant, token):
        email = str(self.config.get("email") or "")
        header = "Basic " + base64.b64encode(email.encode()).decode()
        try:
            response = self.http.request("POST", self.base_url + self.assumed("token_path"),
                                         data={"grant_type": grant["grant_type"], grant["token_field"]: token},
                                         headers={"Authorization": header, "Accept": "application/json"})
        except AuthError as exc:
            raise RenewalRefused(RECONNECT, detail=exc.detail) from None
        except DataError as exc:  # 400 invalid_grant: a used or expired token
            raise RenewalRefused(RECONNECT, detail=exc.detail) from None
        answer = self.http.json_of(response)
        self.expect_fields(answer, self.assumed("token_fields"), "token answer")
        return answer

    # -- calls ------------------------------------------------------------------------
    def folder(self):
        if not self.reference:
            raise ConfigError("This dossier is not linked to a Winbooks On Web folder yet.")
        return self.reference

    def _url(self, path_name, oms, folder):
        return self.base_url + self.assumed(path_name).format(oms=oms, folder=folder)

    def _paged(self, send, what):
        """Every row of an answer continued with the ``ContinuePath`` header until it is absent."""
        header, following, seen = self.assumed("continue_header"), None, set()
        for _ in range(MAX_PAGES):
            response = send({header: following} if following else {})
            yield from self.expect_list(self.http.json_of(response), what)
            following = response.headers.get(header)
            if not following:
                return
            if following in seen:
                raise DataError(f"{PACKAGE} sent the same page of {what}s again: the listing seems to loop.")
            seen.add(following)
        raise DataError(f"{PACKAGE} sent more than {MAX_PAGES} pages of {what}s: the listing seems to loop.")

    def list_rows(self, oms, folder=None):
        """Every object of object model set ``oms`` in the folder (``GET app/{oms}/Folder/{folder}``)."""
        url = self._url("list_path", oms, folder or self.folder())
        return self._paged(lambda extra: self.request("GET", url, headers=extra or None), oms)

    def criteria_rows(self, oms, criteria):
        """Every object matching ``criteria`` (``POST .../ExecuteCriteria``)."""
        url = self._url("criteria_path", oms, self.folder())
        return self._paged(lambda extra: self.request("POST", url, json=criteria, headers=extra or None), oms)

    # -- references -------------------------------------------------------------------
    def lookup_reference(self, reference):
        """A folder exists when its book years can be read (no folder listing is documented)."""
        code = parsing.text(reference)
        if not code:
            raise NotFoundError("Type the Winbooks On Web folder code (as in Winbooks' company switcher).")
        try:
            next(iter(self.list_rows(self.assumed("book_years_oms"), folder=code)), None)
        except NotFoundError:
            raise NotFoundError(f"Winbooks On Web has no folder {code} for this licence.") from None
        return CompanyRef(code, code)

    def list_references(self):
        """The folder codes listed on the connection, each verified by a read."""
        return [self.lookup_reference(code) for code in folder_codes(self.config)]

    def check(self):
        self.session.token()
        folders = self.list_references()
        if folders:
            return CheckResult(True, f"Connected to Winbooks On Web: {len(folders)} folder(s) verified.",
                               references=len(folders))
        return CheckResult(True, "Connected to Winbooks On Web. Type a folder code when you link a file.",
                           references=0)


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _no_lock():
    return _NoLock()
