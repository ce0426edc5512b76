"""The connector contract, checked for EVERY registered connector on its JSON fixtures.

A new package passes it unchanged by adding ``tests/connectors/mocks/<key>.py`` (see
:mod:`tests.connectors.mocks`) and ``tests/fixtures/<key>/``. A mocks module may also
define ``options()`` and ``window()`` (a :class:`connectors.base.SyncWindow`).
"""
from dataclasses import fields as dataclass_fields
from importlib import import_module

import pytest
import requests_mock as requests_mock_lib

from connectors.auth import AuthStrategy, OAuth2Code
from connectors.base import (
    AuthError,
    CheckResult,
    CompanyRef,
    ConnectorContext,
    RateLimited,
    Stream,
    StreamState,
    SyncWindow,
    TransientError,
)
from connectors.http import budget_scope, build_client, secrets_for
from connectors.registry import connectors_in, package_folders
from connectors.scrubbing import SECRET_KEY_PATTERN

MAX_CALLS = 500


def discovered():
    """``{key: connector class}`` of every package folder; a folder that does not import is
    one failing parameter (``broken:<folder>``), not an error that hides the others."""
    found = {}
    for folder in package_folders():
        try:
            found.update({cls.spec.key: cls for cls in connectors_in(import_module(f"connectors.{folder}"))})
        except Exception as exc:  # noqa: BLE001 - reported by the test of that folder
            found[f"broken:{folder}"] = exc
    return found


CONNECTORS = discovered()


def mocks_for(key):
    try:
        return import_module(f"tests.connectors.mocks.{key}")
    except ModuleNotFoundError:
        pytest.fail(f"connector {key!r} has no tests/connectors/mocks/{key}.py (see tests/connectors/mocks/__init__.py)")


class Kit:
    """One connector built on its mocks, with the recorded sleeps and saved credentials."""

    def __init__(self, key, requests_mock, redis):
        if isinstance(CONNECTORS[key], Exception):
            pytest.fail(f"package folder {key.split(':', 1)[1]} does not import: {CONNECTORS[key]!r}")
        self.cls = CONNECTORS[key]
        self.spec = self.cls.spec
        self.mocks = mocks_for(key)
        self.requests_mock = requests_mock
        self.config = self.mocks.config()
        self.credentials = self.mocks.credentials()
        self.reference = self.mocks.reference()
        self.secrets = secrets_for(self.spec, self.config, self.credentials)
        self.sleeps, self.saved = [], []
        self.mocks.register(requests_mock, self.config[self.spec.base_url_setting].rstrip("/"))
        self.http = build_client(self.spec, redis=redis, tenant=budget_scope(self.spec, reference=self.reference),
                                 secrets=self.secrets, sleep=self.sleeps.append)
        self.connector = self.cls(ConnectorContext(
            config=self.config, credentials=self.credentials, reference=self.reference,
            options=getattr(self.mocks, "options", dict)(), http=self.http, save_credentials=self.saved.append,
        ))

    def window(self):
        return getattr(self.mocks, "window", SyncWindow)()

    def fail_everything(self, status, headers=None):
        """From now on every request answers ``status``, echoing the secrets in its body."""
        body = {"error": "failure", "message": f"rejected {' '.join(self.secrets)}",
                "Message": f"rejected {' '.join(self.secrets)}"}
        self.requests_mock.register_uri(requests_mock_lib.ANY, requests_mock_lib.ANY, status_code=status,
                                        json=body, headers=headers or {})

    def assert_no_secret(self, error):
        for text in (error.message, error.detail or "", str(error)):
            for secret in self.secrets:
                assert secret not in text, f"a secret leaked into {text!r}"


@pytest.fixture(params=list(CONNECTORS))
def kit(request, requests_mock, redis_db):
    return Kit(request.param, requests_mock, redis_db)


def test_spec_is_complete(kit):
    spec = kit.spec
    assert spec.key and spec.display_name and spec.api_version
    assert spec.kind in ("accounting", "administration")
    assert spec.level in ("firm", "dossier")
    assert isinstance(spec.auth, AuthStrategy) and spec.docs_url.startswith("https://")
    assert spec.config_schema is not None
    budget = spec.rate_budget
    assert budget.per in ("tenant", "connection", "key", "ip")
    assert budget.per_minute or budget.per_day or budget.concurrency, "declare the package's budget"
    if isinstance(spec.auth, OAuth2Code):
        assert spec.oauth is spec.auth and spec.auth.authorize_url and spec.auth.token_url
    if spec.auth.consent:  # the console connects it through the package's consent page
        assert type(spec.auth).consent_url is not AuthStrategy.consent_url
        assert type(spec.auth).callback is not AuthStrategy.callback


def test_streams_are_declared_classes_with_unique_names(kit):
    streams = kit.cls.streams
    assert streams and all(isinstance(s, type) and issubclass(s, Stream) for s in streams)
    names = [s.name for s in streams]
    assert len(names) == len(set(names))
    for stream in streams:
        assert stream.incremental == (stream.replication_key is not None)
        assert kit.cls.stream(stream.name) is stream
    assert "read" not in vars(kit.cls), "streams are dispatched by the kit, not by hand"


def test_config_schema_round_trips_and_marks_secrets(kit):
    schema = kit.spec.config_schema()
    loaded = schema.load(kit.config)
    assert schema.load(schema.dump(loaded)) == loaded
    for name, schema_field in schema.fields.items():
        if SECRET_KEY_PATTERN.search(name):
            assert schema_field.metadata.get("secret"), f"config field {name!r} looks secret but is not marked"


def test_check_and_references(kit):
    result = kit.connector.check()
    assert isinstance(result, CheckResult) and result.ok and result.message
    if kit.spec.reference_typed:
        found = kit.connector.lookup_reference(kit.reference)
        assert isinstance(found, CompanyRef) and found.name
    else:
        references = kit.connector.list_references()
        assert references and all(isinstance(r, CompanyRef) for r in references)
        assert kit.reference in {r.reference for r in references}
    assert kit.http.api_calls >= 1


def test_every_stream_yields_its_declared_records_and_pagination_ends(kit):
    streams = kit.connector.streams
    assert streams, "a connector offers at least one stream"
    produced = 0
    for stream in streams:
        state = StreamState()
        records = list(kit.connector.read(stream.name, state, kit.window()))
        assert all(isinstance(r, stream.record_type) for r in records), stream.name
        if stream.primary_key and records:
            assert stream.primary_key in {f.name for f in dataclass_fields(stream.record_type)}
            keys = [getattr(r, stream.primary_key) for r in records]
            assert len(keys) == len(set(keys)), f"{stream.name} yields duplicates"
        if stream.incremental and records:
            assert state.new_bookmark is not None, f"{stream.name} must advance its bookmark"
        produced += len(records)
    assert produced > 0
    assert kit.requests_mock.call_count < MAX_CALLS


def test_401_is_an_auth_error_without_secrets(kit):
    kit.fail_everything(401)
    with pytest.raises(AuthError) as caught:
        kit.connector.check()
    kit.assert_no_secret(caught.value)
    assert kit.requests_mock.call_count <= 3, "an auth failure is not retried"


def test_429_is_rate_limited_with_its_retry_after(kit):
    kit.fail_everything(429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimited) as caught:
        kit.connector.check()
    assert caught.value.retry_after == pytest.approx(120, abs=1)
    kit.assert_no_secret(caught.value)


def test_5xx_is_transient_after_bounded_retries(kit):
    kit.fail_everything(503)
    with pytest.raises(TransientError) as caught:
        kit.connector.check()
    assert kit.requests_mock.call_count == kit.http.max_retries + 1
    assert kit.http.api_calls == kit.http.max_retries + 1
    assert len(kit.sleeps) == kit.http.max_retries
    assert kit.sleeps == sorted(kit.sleeps) and max(kit.sleeps) <= kit.http.backoff_cap
    kit.assert_no_secret(caught.value)
