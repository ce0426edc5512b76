"""The framework for packages built from public information: declared assumptions with their source and
confidence, the shape recorder (keys and types, never a value), the diagnostic kept in Redis, and the console's
notice where an administrator chooses the package."""
import json

import pytest

from app.services import diagnostics
from connectors.base import Assumption, DataError, NotFoundError, unexpected_shape
from connectors.http import HttpClient, ShapeRecorder, shape_of
from connectors.registry import all_connectors
from tests.conftest import logged_in, make_user
from tests.console_world import fresh_request_globals  # noqa: F401 - autouse: a fresh `g` per request
from app.models import AuditEvent, Connection, Role


def test_an_assumption_names_its_confidence():
    assert Assumption("GLTrans", "whitecube", "third_party").confidence == "third_party"
    with pytest.raises(ValueError, match="confidence"):
        Assumption("GLTrans", "whitecube", "probably")


def test_a_spec_is_as_sure_as_its_weakest_assumption():
    connectors = all_connectors()
    assert connectors["xero"].spec.confidence == "documented"
    assert not connectors["xero"].spec.built_from_public_information
    assert connectors["bocount_odata_v4"].spec.built_from_public_information  # undocumented=True alone
    spec = connectors["winbooks_on_web"].spec
    assert spec.confidence == "guess" and spec.built_from_public_information
    sure = {"a": Assumption(1, "vendor docs", "verified")}
    from dataclasses import replace
    assert replace(spec, assumptions=sure, undocumented=False).confidence == "verified"
    assert not replace(spec, assumptions=sure, undocumented=False).built_from_public_information


def test_every_package_with_assumptions_reads_them_and_lists_them_in_its_readme():
    from connectors.assumptions import block_in, readme_block
    from connectors.registry import ROOT, package_folders

    for folder in package_folders():
        for cls in {c for c in all_connectors().values() if c.__module__.split(".")[1] == folder}:
            if cls.spec.assumptions:
                assert cls.spec.undocumented, f"{cls.spec.key}: assumptions mean undocumented=True"
                readme = (ROOT / folder / "README.md").read_text()
                assert block_in(readme) == readme_block(cls.spec.assumptions), \
                    f"{folder}/README.md: paste `python -m connectors.assumptions {cls.spec.key}`"


def test_unexpected_shape_names_the_field_or_the_shape():
    error = unexpected_shape("Wings", "ledger line", "Amount", "fields sent: Bedrag")
    assert isinstance(error, DataError) and "a ledger line without the field “Amount”" in error.message
    assert "Amount" in error.message and "Bedrag" in error.detail
    other = unexpected_shape("Wings", "account", None, "a str instead of an object")
    assert "an account in a shape Firmsync does not expect (a str instead of an object)" in other.message


def test_shape_of_keeps_keys_and_types_never_values():
    body = {"access_token": "s3cr3t", "items": [{"Amount": 12.5, "Name": "Bakery", "Ok": True, "X": None}],
            "empty": [], "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}
    shape = shape_of(body)
    assert shape["access_token"] == "string" and shape["empty"] == []
    assert shape["items"] == [{"Amount": "number", "Name": "string", "Ok": "boolean", "X": "null"}]
    assert "s3cr3t" not in json.dumps(shape) and "Bakery" not in json.dumps(shape) and "12.5" not in json.dumps(shape)
    assert "object" in json.dumps(shape["deep"])  # bounded depth
    many = shape_of({f"k{i}": i for i in range(100)})
    assert len(many) == 61 and many["…"] == "more keys"


def test_the_client_records_every_answer_without_query_or_values(requests_mock):
    requests_mock.get("https://books.example/app/GLTrans/Folder/ACME", json=[{"Id": 1, "Comment": "Rent"}],
                      headers={"ContinuePath": "p2", "X-Secret-Header": "h-value"})
    requests_mock.get("https://books.example/app/Missing", status_code=404, text="<html>no</html>",
                      headers={"Content-Type": "text/html"})
    client = HttpClient("Books", sleep=lambda s: None)
    client.recorder = ShapeRecorder(limit=2)
    client.get("https://books.example/app/GLTrans/Folder/ACME?token=abc123")
    with pytest.raises(NotFoundError):
        client.get("https://books.example/app/Missing")
    client.get("https://books.example/app/GLTrans/Folder/ACME")
    recorded = client.recorder.as_dict()
    first, missing = recorded["requests"]
    assert first == {"method": "GET", "path": "/app/GLTrans/Folder/ACME", "status": 200,
                     "headers": ["ContinuePath", "X-Secret-Header"],
                     "shape": [{"Id": "number", "Comment": "string"}]}
    assert missing["status"] == 404 and missing["shape"] == {"content_type": "text/html", "bytes": 15}
    assert recorded["dropped"] == 1
    text = json.dumps(recorded)
    assert "abc123" not in text and "Rent" not in text and "h-value" not in text and "p2" not in text


def test_a_client_without_recorder_records_nothing(requests_mock):
    requests_mock.get("https://books.example/x", json={})
    client = HttpClient("Books")
    client.get("https://books.example/x")
    assert client.recorder is None


def test_the_diagnostic_is_kept_in_redis_with_a_ttl(app, db, firm, redis_db):
    connection = Connection(firm_id=firm.id, package="winbooks_on_web", kind="accounting", name="WoW")
    db.session.add(connection)
    db.session.commit()
    http = HttpClient("Winbooks On Web")
    diagnostics.attach_recorder(http, all_connectors()["winbooks_on_web"].spec)
    assert isinstance(http.recorder, ShapeRecorder)
    assert diagnostics.attach_recorder(HttpClient("Xero"), all_connectors()["xero"].spec).recorder is None
    assert diagnostics.last(connection) is None
    kept = diagnostics.keep(connection, None, http)
    assert diagnostics.last(connection) == kept and kept["package"] == "winbooks_on_web"
    assert kept["assumptions"]["continue_header"] == {"confidence": "third_party",
                                                      "source": kept["assumptions"]["continue_header"]["source"]}
    ttl = redis_db.ttl(diagnostics.key_for(connection.id))
    assert 0 < ttl <= diagnostics.TTL_SECONDS


def test_the_console_says_which_packages_are_built_from_public_information(app, client, db, firm):
    logged_in(client, make_user("admin@alpha.test", firm, Role.ADMIN))
    page = client.get("/admin/connections/new/?kind=accounting").get_data(as_text=True)
    notice = "Built from public information; tell us if your data looks wrong."
    winbooks = page[page.index('href="/admin/connections/new/?package=winbooks_on_web"'):]
    assert notice in winbooks[:winbooks.index("</a>")]
    afas = page[page.index('href="/admin/connections/new/?package=afas"'):]
    assert notice not in afas[:afas.index("</a>")]


def test_a_diagnostic_not_kept_yet_says_so_and_audits_nothing(app, client, db, firm, redis_db):
    connection = Connection(firm_id=firm.id, package="winbooks_on_web", kind="accounting", level="firm",
                            name="WoW", config={"email": "a@b.be"})
    db.session.add(connection)
    db.session.commit()
    logged_in(client, make_user("admin@alpha.test", firm, Role.ADMIN))
    answer = client.get(f"/admin/connections/diagnostic/?id={connection.id}")
    assert answer.status_code == 302 and answer.location.endswith(f"/admin/connections/details/?id={connection.id}")
    assert "No diagnostic yet" in client.get(answer.location).get_data(as_text=True)
    assert client.get("/admin/connections/diagnostic/?id=abc").status_code == 404
    assert db.session.query(AuditEvent).filter_by(action="download_diagnostic").count() == 0
