"""XML-RPC and JSON-RPC over the kit's HTTP client (ARCHITECTURE section 5).

Both transports POST through the connection's :class:`connectors.http.HttpClient` (budgets,
``api_calls``, retries, typed errors, scrubbing); neither uses
:class:`xmlrpc.client.ServerProxy`'s own HTTP. RPC servers report faults inside an HTTP 200
(an XML-RPC ``<fault>``, a JSON-RPC ``error`` object), so each transport hands the client an
``interpret`` hook that finds the fault on the raw answer and maps it through the
connector's table (see :func:`connectors.http.match_fault`), e.g. for Odoo::

    ODOO_FAULTS = {3: AuthError, "AccessDenied": AuthError, 4: PermissionError, "AccessError": PermissionError,
                   100: AuthError}   # 100: JSON-RPC "Odoo Session Expired"

Faults the table does not name become ``default`` (:class:`DataError`).

Money never passes through a float: XML-RPC ``<double>`` values are read as
:class:`~decimal.Decimal` from the text the server wrote (``Decimal("1234.56")``, not
``Decimal(1234.56)``), and JSON numbers with a fraction as :class:`~decimal.Decimal`
(:meth:`connectors.http.HttpClient.json_of`). The text is what the server wrote: a server
that computed ``0.1 + 0.2`` in floats sends ``0.30000000000000004``, so round amounts to the
currency's precision where the connector knows it. Parameters sent are marshalled by the
standard library: pass amounts as ``str`` or ``float``, not ``Decimal``.

Usage (Odoo's external API)::

    common = XmlRpcTransport(http, f"{base_url}/xmlrpc/2/common", faults=ODOO_FAULTS)
    uid = common.call("authenticate", db, login, api_key, {})
    lines = common.call("execute_kw", db, uid, api_key, "account.move.line", "search_read", [[]],
                        {"fields": ["debit", "credit"]}, url=f"{base_url}/xmlrpc/2/object")

    rpc = JsonRpcTransport(http, f"{base_url}/jsonrpc", faults=ODOO_FAULTS)
    version = rpc.call("common", "version")
"""
from __future__ import annotations

import itertools
import json
import xmlrpc.client
from decimal import Decimal, InvalidOperation
from xml.parsers.expat import ExpatError

from connectors.base import DataError
from connectors.http import BAD_JSON_MESSAGE, match_fault, vendor_error


class DecimalUnmarshaller(xmlrpc.client.Unmarshaller):
    """The standard unmarshaller, with ``<double>`` (and ``<float>``) read as :class:`Decimal`
    from the value's text."""

    dispatch = dict(xmlrpc.client.Unmarshaller.dispatch)

    def end_double(self, data):
        self.append(Decimal(data.strip()))
        self._value = 0

    dispatch["double"] = end_double
    dispatch["float"] = end_double


def loads(data, *, decimals=True):
    """``xmlrpc.client.loads(data, use_builtin_types=True)`` (``(params, method name)``; raises
    :class:`xmlrpc.client.Fault` for a fault), with doubles as :class:`Decimal` unless
    ``decimals`` is false."""
    if not decimals:
        return xmlrpc.client.loads(data, use_builtin_types=True)
    unmarshaller = DecimalUnmarshaller(use_builtin_types=True)
    parser = xmlrpc.client.ExpatParser(unmarshaller)
    parser.feed(data)
    parser.close()
    return unmarshaller.close(), unmarshaller.getmethodname()


class XmlRpcTransport:
    """XML-RPC calls to ``url`` through ``http`` (a :class:`connectors.http.HttpClient`).

    :param faults: the connector's fault table; keys match the ``faultCode`` (3 or ``"3"``)
        or a whole word of the ``faultString`` (``"AccessDenied"``).
    :param default: the error class of a fault the table does not name.
    :param decimals: read ``<double>`` values as :class:`Decimal` (default) rather than float.
    """

    def __init__(self, http, url, *, faults=None, default=DataError, decimals=True):
        self.http = http
        self.url = url
        self.faults = faults or {}
        self.default = default
        self.decimals = decimals

    def call(self, method, *params, url=None):
        """Call ``method`` with ``params`` (at ``url`` instead of the transport's when given)
        and return its result; a fault raises the typed error its table entry names."""
        body = xmlrpc.client.dumps(tuple(params), method, encoding="utf-8", allow_none=True)
        response = self.http.request("POST", url or self.url, data=body.encode("utf-8"),
                                     headers={"Content-Type": "text/xml; charset=utf-8"}, interpret=self.interpret)
        try:
            (result,), _ = loads(response.content, decimals=self.decimals)
        except xmlrpc.client.Fault as fault:  # not seen by interpret (never in practice): same mapping
            error = self.fault_error(fault)
        except (xmlrpc.client.Error, ExpatError, InvalidOperation, ValueError, TypeError):
            error = DataError(BAD_JSON_MESSAGE.format(package=self.http.package), detail=f"XML-RPC {method}")
        else:
            return result
        error.message = self.http.scrub(error.message)
        error.args = (error.message,)
        error.detail = self.http.scrub(error.detail)
        raise error

    def interpret(self, response):
        """The client's hook: the typed error of an XML-RPC fault in the answer, else None."""
        if b"<fault>" not in response.content:
            return None
        try:
            loads(response.content, decimals=False)
        except xmlrpc.client.Fault as fault:
            return self.fault_error(fault)
        except Exception:  # not XML-RPC: the status table decides
            return None
        return None

    def fault_error(self, fault):
        """The typed error (an instance, not yet scrubbed) for an :class:`xmlrpc.client.Fault`."""
        code, text = fault.faultCode, str(fault.faultString or "")
        if isinstance(code, str):
            text = f"{code} {text}"
        error_class = match_fault(self.faults, (code,), text) or self.default
        said = fault.faultString or (code if isinstance(code, str) else None)
        return vendor_error(self.http.package, error_class, said, detail=f"XML-RPC fault {code}")


class JsonRpcTransport:
    """JSON-RPC 2.0 calls to ``url`` through ``http`` (a :class:`connectors.http.HttpClient`).

    :param faults: the connector's fault table; keys match the error's ``code``, its
        ``data.name`` (``"odoo.exceptions.AccessDenied"``) or that name's last part
        (``"AccessDenied"``), or a whole word of its message.
    :param default: the error class of an error the table does not name.
    """

    def __init__(self, http, url, *, faults=None, default=DataError):
        self.http = http
        self.url = url
        self.faults = faults or {}
        self.default = default
        self._ids = itertools.count(1)

    def request(self, method, params=None, *, url=None):
        """Send ``{"jsonrpc": "2.0", "method": method, "params": params, "id": n}`` and return
        its ``result`` (numbers with a fraction as :class:`Decimal`); an ``error`` raises the
        typed error its table entry names; an answer without a result is a :class:`DataError`."""
        request_id = next(self._ids)
        payload = {"jsonrpc": "2.0", "method": method, "params": {} if params is None else params, "id": request_id}
        response = self.http.request("POST", url or self.url, json=payload, interpret=self.interpret)
        body = self.http.json_of(response)
        if not isinstance(body, dict) or "result" not in body or body.get("id") not in (None, request_id):
            raise DataError(self.http.scrub(BAD_JSON_MESSAGE.format(package=self.http.package)),
                            detail=f"JSON-RPC {method}: no result for request {request_id}")
        return body["result"]

    def call(self, service, method, *args, url=None):
        """Odoo's ``/jsonrpc`` dispatch: ``request("call", {"service", "method", "args"})``,
        e.g. ``call("object", "execute_kw", db, uid, key, model, "search_read", [domain], {...})``."""
        return self.request("call", {"service": service, "method": method, "args": list(args)}, url=url)

    def interpret(self, response):
        """The client's hook: the typed error of a JSON-RPC ``error`` in the answer, else None."""
        if b'"error"' not in response.content:
            return None
        try:
            body = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
            return None
        return self.error_for(body["error"])

    def error_for(self, error):
        """The typed error (an instance, not yet scrubbed) for a JSON-RPC ``error`` object."""
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
        name = str(data.get("name") or "")
        message, said = str(error.get("message") or ""), data.get("message") or error.get("message")
        codes = (error.get("code"), name, name.rsplit(".", 1)[-1])
        error_class = match_fault(self.faults, codes, f"{message} {data.get('message') or ''}") or self.default
        return vendor_error(self.http.package, error_class, said,
                            detail=f"JSON-RPC error {error.get('code')} {name}".rstrip())
