"""SOAP over the kit's HTTP client (ARCHITECTURE section 5): zeep builds and reads the
envelopes, :class:`connectors.http.HttpClient` carries them.

Every operation call goes through the connection's :class:`~connectors.http.HttpClient`, so
it waits for the package's budgets, counts in ``api_calls``, is retried, scrubbed and mapped
to the typed errors like any other request. SOAP faults are classified on the raw answer,
BEFORE the status table (a fault usually arrives as HTTP 500, which the table would retry as
transient): :func:`fault_interpreter` parses a SOAP 1.1 or 1.2 ``Fault`` (in an HTTP 500 or
200) and maps it through the connector's table, e.g. Twinfield's ``{"354": AuthError}`` (an
expired access token). No fault reaches the caller as a :class:`zeep.exceptions.Fault`.

WSDL and XSD documents: a local path (or ``file://`` URL) is read from disk, with no network
(connectors ship the vendor's WSDL with their code); an ``http(s)`` URL is fetched through
the same :class:`HttpClient`, so it counts against the budget like the vendor counts it
(Twinfield bills a GET one credit) and fails with typed errors. Pass a zeep cache
(``zeep.cache.InMemoryCache()``) to fetch a remote WSDL once per process.

Usage::

    client = soap_client("connectors/twinfield/finder.wsdl", http,
                         service_address=f"{cluster}/webservices/finder.asmx",
                         faults={"354": AuthError})
    header = soap_header("{http://www.twinfield.com/}Header", AccessToken=token, CompanyCode=office)
    answer = client.service.Search(type="DIM", pattern="*", field=0, firstRow=1, maxRows=100,
                                   _soapheaders=[header])
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.request import url2pathname

import zeep
import zeep.exceptions
from lxml import etree
from zeep.proxy import OperationProxy, ServiceProxy
from zeep.transports import Transport

from connectors.base import DataError, TransientError
from connectors.http import BAD_JSON_MESSAGE, match_fault, vendor_error

SOAP11_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENVELOPE = "http://www.w3.org/2003/05/soap-envelope"
#: fault codes of the caller's side (SOAP 1.1 ``Client``, SOAP 1.2 ``Sender``)
CLIENT_CODES = {"Client", "Sender", "VersionMismatch", "MustUnderstand", "DataEncodingUnknown"}

#: zeep errors about an answer it could not read (others, e.g. a ValidationError of the
#: arguments, are programming errors and propagate)
_ANSWER_ERRORS = (zeep.exceptions.TransportError, zeep.exceptions.XMLSyntaxError,
                  zeep.exceptions.XMLParseError, zeep.exceptions.UnexpectedElementError)


@dataclass(frozen=True)
class SoapFault:
    """A SOAP fault read from an answer.

    ``code`` is the fault code as sent (``soap:Client``, ``env:Sender``), ``subcodes`` the SOAP
    1.2 subcode values, ``reason`` the faultstring / Reason text, ``details`` the texts inside
    ``detail``/``Detail`` (vendors put error numbers there); ``version`` is ``"1.1"``, ``"1.2"``
    or ``""`` when unknown.
    """

    version: str
    code: str
    reason: str
    subcodes: tuple = ()
    details: tuple = ()

    @property
    def codes(self):
        """Every value a fault table key may equal: each code and subcode as sent, without
        its prefix, and its dotted parts (SOAP 1.1 ``Client.Authentication``), then the
        detail texts."""
        found = []
        for code in (self.code, *self.subcodes):
            local = code.rsplit(":", 1)[-1]
            found += [code, local, *local.split(".")]
        return tuple(dict.fromkeys([*found, *self.details]))

    @property
    def is_client(self):
        """True for a fault of the caller's side (``Client``/``Sender``...): retrying is useless."""
        return self.code.rsplit(":", 1)[-1].split(".")[0] in CLIENT_CODES


def parse_fault(content) -> SoapFault | None:
    """The :class:`SoapFault` in a SOAP 1.1 or 1.2 answer body (bytes), or None when the body
    is not a SOAP envelope whose Body holds a Fault. Entities and network access are off."""
    if not content or b"Fault" not in content:
        return None
    try:
        # a parser per call: lxml parsers must not be shared between threads
        root = etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError):
        return None
    namespace = etree.QName(root).namespace
    if namespace not in (SOAP11_ENVELOPE, SOAP12_ENVELOPE) or etree.QName(root).localname != "Envelope":
        return None
    fault = root.find(f"{{{namespace}}}Body/{{{namespace}}}Fault")
    if fault is None:
        return None
    if namespace == SOAP11_ENVELOPE:
        # the children are unqualified (SOAP 1.1 section 4.4); some servers qualify them anyway
        code, reason, detail = (_child(fault, name, namespace) for name in ("faultcode", "faultstring", "detail"))
        return SoapFault("1.1", _text(code), _text(reason), details=_texts(detail))
    ns = f"{{{namespace}}}"
    subcodes, sub = [], fault.find(f"{ns}Code/{ns}Subcode")
    while sub is not None:
        subcodes.append(_text(sub.find(f"{ns}Value")))
        sub = sub.find(f"{ns}Subcode")
    return SoapFault("1.2", _text(fault.find(f"{ns}Code/{ns}Value")), _text(fault.find(f"{ns}Reason/{ns}Text")),
                     subcodes=tuple(s for s in subcodes if s), details=_texts(fault.find(f"{ns}Detail")))


def fault_error(package, fault, faults=None, *, client_fault=DataError, server_fault=TransientError):
    """The typed error (an instance, not raised, not yet scrubbed) for a :class:`SoapFault`.

    ``faults`` is the connector's table (see :func:`connectors.http.match_fault`; keys match
    the fault's :attr:`SoapFault.codes` exactly or its reason as a whole word). A fault the
    table does not name becomes ``client_fault`` (default :class:`DataError`, raised at once)
    for a Client/Sender fault and ``server_fault`` (default :class:`TransientError`, retried
    like a 5xx) otherwise. The message quotes the reason's first line.
    """
    error_class = match_fault(faults, fault.codes, fault.reason)
    if error_class is None:
        error_class = client_fault if fault.is_client else server_fault
    return vendor_error(package, error_class, fault.reason, detail=f"SOAP fault {fault.code}")


def fault_interpreter(package, faults=None, *, client_fault=DataError, server_fault=TransientError):
    """An ``interpret(response)`` hook for :class:`connectors.http.HttpClient`: the typed error
    of the SOAP fault in the answer (whatever its HTTP status), else None. See
    :func:`fault_error` for ``faults``, ``client_fault`` and ``server_fault``."""

    def interpret(response):
        fault = parse_fault(response.content)
        if fault is None:
            return None
        return fault_error(package, fault, faults, client_fault=client_fault, server_fault=server_fault)

    return interpret


def soap_header(tag, **fields):
    """A SOAP header element to pass in ``_soapheaders=[...]``, for headers a WSDL does not
    declare (Twinfield's finder WSDL declares only ``SessionID``): ``tag`` is ``"{ns}Name"``;
    each field becomes a child in the same namespace, in the order given; None is left out."""
    element = etree.Element(tag)
    namespace = etree.QName(element).namespace
    for name, value in fields.items():
        if value is not None:
            etree.SubElement(element, f"{{{namespace}}}{name}" if namespace else name).text = str(value)
    return element


class SoapTransport(Transport):
    """A zeep transport whose requests all go through a :class:`connectors.http.HttpClient`.

    :param http: the connection's client (budgets, counting, retries, typed errors, scrubbing).
    :param interpret: the ``interpret(response)`` hook passed with every operation call
        (usually :func:`fault_interpreter`); it runs before the client's own hook.
    :param cache: a zeep cache for remote WSDL/XSD documents.
    :param timeout: ``(connect, read)`` seconds for calls; None: the client's timeout.

    Envelopes are never logged (they carry access tokens).
    """

    def __init__(self, http, *, interpret=None, cache=None, timeout=None):
        # Transport.__init__ is not called: it would mount a file:// adapter and zeep's
        # User-Agent on the connection's shared session.
        self.http = http
        self.interpret = interpret
        self.cache = cache
        self.load_timeout = timeout
        self.operation_timeout = timeout
        self.logger = logging.getLogger(__name__)
        self.session = http.session
        self._close_session = False

    def post(self, address, message, headers):
        """POST ``message`` (the serialised envelope) through the client."""
        return self.http.request("POST", address, data=message, headers=headers, timeout=self.operation_timeout,
                                 interpret=self.interpret)

    def get(self, address, params, headers):
        """GET through the client (HTTP-GET bindings)."""
        return self.http.request("GET", address, params=params, headers=headers, timeout=self.operation_timeout,
                                 interpret=self.interpret)

    def _load_remote_data(self, url):
        """A WSDL/XSD document: ``file://`` from disk, ``http(s)`` through the client."""
        parts = urlsplit(url)
        if parts.scheme == "file":
            with open(url2pathname(parts.path), "rb") as handle:
                return handle.read()
        return self.http.get(url, timeout=self.load_timeout).content


class SoapClient(zeep.Client):
    """A :class:`zeep.Client` on a :class:`SoapTransport` whose operations raise typed errors
    only. Build it with :func:`soap_client` (same parameters)."""

    def __init__(self, wsdl, http, *, faults=None, interpret_faults=None, service_address=None,
                 service_name=None, port_name=None, cache=None, settings=None, plugins=None, timeout=None):
        self.http = http
        self.service_address = service_address
        if interpret_faults is None:
            interpret_faults = fault_interpreter(http.package, faults)
        self.faults = faults
        transport = SoapTransport(http, interpret=interpret_faults, cache=cache, timeout=timeout)
        try:
            super().__init__(wsdl, transport=transport, service_name=service_name, port_name=port_name,
                             plugins=plugins, settings=settings)
            return
        except _ANSWER_ERRORS + (zeep.exceptions.WsdlSyntaxError,) as exc:
            error = _unreadable(http, exc)
        raise error  # outside the except block: zeep's exception (and the body it quotes) is not chained

    def bind(self, service_name=None, port_name=None):
        """The service proxy of a port (the WSDL's first service and port by default), at
        ``service_address`` when one was given."""
        services = self.wsdl.services
        if not services:
            return None
        service = services[service_name] if service_name else next(iter(services.values()))
        port = service.ports[port_name] if port_name else next(iter(service.ports.values()))
        options = dict(port.binding_options)
        if self.service_address:
            options["address"] = self.service_address
        return _ServiceProxy(self, port.binding, **options)

    def create_service(self, binding_name, address):
        """The service proxy of binding ``binding_name`` (a QName) at ``address``."""
        try:
            binding = self.wsdl.bindings[binding_name]
        except KeyError:
            raise ValueError(f"no binding {binding_name!r} in the WSDL") from None
        return _ServiceProxy(self, binding, address=address)


def soap_client(wsdl, http, *, faults=None, interpret_faults=None, service_address=None, service_name=None,
                port_name=None, cache=None, settings=None, plugins=None, timeout=None) -> SoapClient:
    """A zeep client whose every HTTP call goes through ``http`` (a
    :class:`connectors.http.HttpClient`) and whose operations raise typed errors only.

    :param wsdl: a local path (read offline) or an ``http(s)`` URL (fetched through ``http``).
    :param faults: the connector's fault table, ``{code or word: error class}``, e.g.
        Twinfield ``{"354": AuthError}``; see :func:`fault_error` for what unlisted faults become.
    :param interpret_faults: an ``interpret(response)`` hook replacing the default
        ``fault_interpreter(http.package, faults)``.
    :param service_address: the endpoint to call instead of the WSDL's ``soap:address``
        (Twinfield: the organisation's cluster URL; tests: a local server).
    :param service_name: / ``port_name``: the service and port of ``client.service`` (the
        WSDL's first ones by default, e.g. the SOAP 1.1 port).
    :param cache: a zeep cache for remote WSDL/XSD documents.
    :param settings: a :class:`zeep.Settings` (zeep's defaults forbid entities and external DTDs).
    :param plugins: zeep plugins.
    :param timeout: ``(connect, read)`` seconds for calls; None: the client's timeout.

    A fault that reaches zeep anyway (an ``interpret_faults`` that let it through) is mapped
    with ``faults`` all the same; an answer zeep cannot read raises :class:`DataError`.
    Messages are scrubbed of the client's secrets and no zeep exception is chained.
    """
    return SoapClient(wsdl, http, faults=faults, interpret_faults=interpret_faults, service_address=service_address,
                      service_name=service_name, port_name=port_name, cache=cache, settings=settings,
                      plugins=plugins, timeout=timeout)


class _ServiceProxy(ServiceProxy):
    """zeep's service proxy with :class:`_Operation` proxies."""

    def __init__(self, client, binding, **binding_options):
        super().__init__(client, binding, **binding_options)
        self._operations = {name: _Operation(self, name) for name in self._operations}


class _Operation(OperationProxy):
    """zeep's operation proxy turning zeep's answer errors into typed errors."""

    def __call__(self, *args, **kwargs):
        client = self._proxy._client
        try:
            return super().__call__(*args, **kwargs)
        except zeep.exceptions.Fault as exc:
            fault = SoapFault("", str(exc.code or ""), str(exc.message or ""),
                              subcodes=tuple(str(s) for s in exc.subcodes or ()),
                              details=_texts(exc.detail) if isinstance(exc.detail, etree._Element) else ())
            error = _scrubbed(client.http, fault_error(client.http.package, fault, client.faults))
        except _ANSWER_ERRORS as exc:
            error = _unreadable(client.http, exc)
        raise error  # outside the except block: zeep's exception (and the body it quotes) is not chained


def _unreadable(http, exc):
    return DataError(http.scrub(BAD_JSON_MESSAGE.format(package=http.package)),
                     detail=http.scrub(f"SOAP: {type(exc).__name__}"))


def _scrubbed(http, error):
    error.message = http.scrub(error.message)
    error.args = (error.message,)
    error.detail = http.scrub(error.detail)
    return error


def _child(element, name, namespace):
    found = element.find(name)
    return found if found is not None else element.find(f"{{{namespace}}}{name}")


def _text(element):
    return (element.text or "").strip() if element is not None else ""


def _texts(element):
    if element is None:
        return ()
    return tuple(text.strip() for text in element.itertext() if text.strip())
