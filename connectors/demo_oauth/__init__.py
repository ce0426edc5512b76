"""Demo Cloud: the Demo Books data behind OAuth2 with PKCE and rotating refresh tokens.

Served by the sandbox (``connectors/demo_oauth/emulator.py``) under ``<base_url>/oauth`` and
``<base_url>/api/v1``; access tokens last 30 minutes; each refresh token works once.
"""
from marshmallow import Schema, fields

from connectors.auth import OAuth2Code
from connectors.base import ACCOUNTING, FIRM, ConnectorSpec, RateBudget
from connectors.demo import DemoBooks


class DemoCloudConfig(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "Base URL"})
    client_id = fields.String(required=True, metadata={"label": "Client ID"})
    client_secret = fields.String(required=True, metadata={"secret": True, "label": "Client secret"})


class DemoCloud(DemoBooks):
    spec = ConnectorSpec(
        key="demo_oauth",
        display_name="Demo Cloud (sandbox OAuth)",
        kind=ACCOUNTING,
        level=FIRM,
        # endpoint paths are joined to the configured base URL (the sandbox)
        auth=OAuth2Code(authorize_url="/oauth/authorize", token_url="/oauth/token", scopes=("books.read",),
                        pkce=True, rotating_refresh_token=True, access_token_seconds=1800),
        config_schema=DemoCloudConfig,
        api_version="1",
        docs_url="https://github.com/firmsync/firmsync/blob/main/connectors/demo/README.md#demo-cloud",
        rate_budget=RateBudget(per_minute=600, per_day=100_000, concurrency=4, per="tenant"),
        sandbox_config={"base_url": "{sandbox}/demo-cloud", "client_id": "demo-cloud-client",
                        "client_secret": "demo-cloud-secret"},
    )
    name = "Demo Cloud"
