"""Exact Online (BE): the shared :mod:`connectors.exact_online` on its BE host."""
from connectors.exact_online import ExactOnline, exact_spec


class ExactOnlineBE(ExactOnline):
    host = "https://start.exactonline.be"
    spec = exact_spec("exact_online_be", "BE", host)
