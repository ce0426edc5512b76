"""Exact Online (FR) mocks: the BE fixtures served from start.exactonline.fr."""
from tests.connectors.mocks import exact_online_be

KEY = "exact_online_fr"
BASE_URL = "https://start.exactonline.fr"


def config():
    return exact_online_be.config(BASE_URL)


credentials = exact_online_be.credentials
reference = exact_online_be.reference


def register(requests_mock, base_url):
    exact_online_be.register(requests_mock, base_url)
