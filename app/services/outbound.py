"""Where a connection may send requests: the vendor's documented hosts, never this server's own
network (server-side request forgery, OWASP ASVS V12.6).

A connection's configuration holds URLs (an API address, a login server); an administrator can
type them. Before a connector is built, and when the connection form is saved, every URL of
the configuration is checked:

* an ``http(s)`` URL with a host (anything else is refused);
* in production, a host matching the package's ``vendor_hosts`` when it declares them;
* a host that resolves only to public addresses: loopback, private, link-local, reserved and
  multicast targets are refused (all resolved addresses are checked, IPv4 and IPv6).

The local sandbox (``SANDBOX_URL``) is allowed wherever it is configured, and
``ALLOW_PRIVATE_CONNECTOR_HOSTS`` (development and tests) lifts the address and vendor-host
rules. A name that does not resolve is let through: the request will fail anyway, with the
same message as any unreachable host. The refusal message is the same whatever the address
answers, so it tells nothing about the inside network.
"""
from __future__ import annotations

import ipaddress
import socket
from fnmatch import fnmatch
from urllib.parse import urlsplit

from flask import current_app, has_app_context

from connectors.base import ConfigError

REFUSED = "Firmsync does not send requests to {host}: use the address {package} documents for its API."


def configured_urls(spec, config):
    """``{field: url}`` of the configuration's URL settings (URL fields, and names ending in ``_url``)."""
    schema = spec.config_schema() if isinstance(spec.config_schema, type) else spec.config_schema
    url_fields = {name for name, schema_field in getattr(schema, "fields", {}).items()
                  if type(schema_field).__name__ == "Url" or name.endswith("_url")}
    return {name: str(value) for name, value in (config or {}).items()
            if name in url_fields | {spec.base_url_setting} and isinstance(value, str) and value.strip()}


def _setting(name, default=None):
    return current_app.config.get(name, default) if has_app_context() else default


def _under_sandbox(url):
    if _setting("ENV_NAME") == "production":
        return False
    sandbox = str(_setting("SANDBOX_URL") or "").rstrip("/")
    return bool(sandbox) and (url.rstrip("/") == sandbox or url.startswith(sandbox + "/"))


def _public(host):
    """False when ``host`` is (or resolves to) an address of a private, local or reserved network."""
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        try:
            addresses = {ipaddress.ip_address(info[4][0].split("%")[0])
                         for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
        except (socket.gaierror, UnicodeError, OSError):
            return True  # unresolvable: the request itself will fail
    return all(address.is_global and not address.is_multicast for address in addresses)


def refusal(spec, config):
    """The message refusing the first URL of ``config`` that may not be called, or None."""
    relaxed = bool(_setting("ALLOW_PRIVATE_CONNECTOR_HOSTS", False))
    for url in configured_urls(spec, config).values():
        if _under_sandbox(url):
            continue
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            return REFUSED.format(host=url[:80] or "an empty address", package=spec.display_name)
        if relaxed:
            continue
        if spec.vendor_hosts and not any(fnmatch(host, pattern) for pattern in spec.vendor_hosts):
            return REFUSED.format(host=host, package=spec.display_name)
        if not _public(host):
            return REFUSED.format(host=host, package=spec.display_name)
    return None


def check_outbound(spec, config):
    """Raise :class:`ConfigError` when the configuration names an address that may not be called."""
    message = refusal(spec, config)
    if message:
        raise ConfigError(message)


URL_REFUSED = "Firmsync does not send requests to {host}: give a public https address."


def url_refusal(url):
    """The message refusing a plain URL Firmsync would call (a webhook endpoint), or None.

    The same rules as a connection's addresses, without vendor hosts: an ``http(s)`` URL
    with a host, and (unless ``ALLOW_PRIVATE_CONNECTOR_HOSTS``) ``https`` to a host resolving
    only to public addresses. Checked when the URL is saved and again before each request.
    """
    parts = urlsplit((url or "").strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return URL_REFUSED.format(host=(url or "")[:80] or "an empty address")
    if bool(_setting("ALLOW_PRIVATE_CONNECTOR_HOSTS", False)):
        return None
    if parts.scheme != "https" or not _public(host):
        return URL_REFUSED.format(host=host)
    return None
