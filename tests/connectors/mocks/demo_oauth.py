"""Demo Cloud mocks: a fresh access token (no refresh needed), the Demo Books data shapes."""
import time

from tests.connectors.mocks import demo

KEY = "demo_oauth"
BASE_URL = "https://demo-cloud.example.test/demo-cloud"


def config():
    return {"base_url": BASE_URL, "client_id": "demo-cloud-client", "client_secret": "demo-cloud-secret-55e1"}


def credentials():
    return {"access_token": "at-0d9c2b7e51", "refresh_token": "rt-8e4f1a6c33", "token_type": "Bearer",
            "expires_at": int(time.time()) + 1800}


def reference():
    return demo.COMPANY


def register(requests_mock, base_url):
    demo.register(requests_mock, base_url, key=KEY)
