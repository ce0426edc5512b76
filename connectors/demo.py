"""Demo Books: Firmsync's own test package, served by the sandbox (``sandbox/demo.py``).

It exercises every part of the contract (API key auth, company listing, fiscal years,
accounts, period balances, paged incremental ledger lines, a delete feed) so the engine,
the console and the benchmarks can run end to end without any vendor.
"""
from marshmallow import Schema, fields

from connectors.base import ACCOUNTING, AUTH_API_KEY, FIRM, Connector, ConnectorSpec, RateBudget


class DemoConfig(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "Base URL"})
    api_key = fields.String(required=True, metadata={"secret": True, "label": "API key"})


class DemoBooks(Connector):
    spec = ConnectorSpec(
        key="demo",
        display_name="Demo Books (sandbox)",
        kind=ACCOUNTING,
        level=FIRM,
        auth=AUTH_API_KEY,
        config_schema=DemoConfig,
        api_version="1",
        docs_url="https://github.com/firmsync/firmsync/blob/main/docs/connectors.md#demo-books",
        rate_budget=RateBudget(per_minute=600, per_day=100_000, concurrency=4, per="tenant"),
        reference_label="company",
    )
