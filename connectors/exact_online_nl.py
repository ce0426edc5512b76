"""Exact Online (NL): the shared :mod:`connectors.exact_online` on its NL host."""
from connectors.exact_online import ExactOnline, exact_spec


class ExactOnlineNL(ExactOnline):
    host = "https://start.exactonline.nl"
    spec = exact_spec("exact_online_nl", "NL", host)
