"""Exact Online (FR): the shared :mod:`connectors.exact_online` on its FR host."""
from connectors.exact_online import ExactOnline, exact_spec


class ExactOnlineFR(ExactOnline):
    host = "https://start.exactonline.fr"
    spec = exact_spec("exact_online_fr", "FR", host)
