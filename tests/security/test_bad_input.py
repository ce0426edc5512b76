"""Bad input gets a plain answer, never a 500: ids beyond what the database holds, dates at
the ends of the calendar, numbers such as 1E30 in connection forms (#19 item 11).

:mod:`tests.security.test_routes` walks every route with such values; these tests name the
cases whose answer matters (404, 400 or a message on the form).
"""
import pytest
from sqlalchemy import func, select

from admin_views.base import MAX_ID, row_id
from app.extensions import db
from app.models import Connection, FiscalYear
from connectors import registry
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

TOO_BIG = [str(MAX_ID + 1), str(2**63), "9" * 40]


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def real_errors(app):
    """Unexpected exceptions become 500 answers, as in production (not raised in the test)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False


@pytest.mark.parametrize("value, expected", [
    ("1", 1), (str(MAX_ID), MAX_ID), (7, 7),
    (str(MAX_ID + 1), None), (str(2**63), None), ("9" * 40, None), ("0", None), ("-1", None),
    ("1E30", None), ("abc", None), ("", None), (None, None), ("1.5", None),
])
def test_row_id_answers_only_ids_a_row_can_have(value, expected):
    assert row_id(value) == expected


@pytest.mark.parametrize("value", TOO_BIG)
@pytest.mark.parametrize("url", [
    "/admin/dossier/?id={}", "/admin/dossier/ledger?id={}", "/admin/dossier/progress?id={}",
    "/admin/dossier-sync/?id={}", "/admin/dossiers/details/?id={}", "/admin/runs/details/?id={}",
    "/admin/connections/edit/?id={}", "/admin/connections/task/?kind=check&id={}",
    "/admin/new-client/references-task?connection_id={}",
])
def test_an_id_beyond_the_database_is_not_found(client, world, real_errors, url, value):
    log_in(client, "admin")
    assert client.get(url.format(value)).status_code == 404


@pytest.mark.parametrize("value", TOO_BIG)
@pytest.mark.parametrize("parameter", ["year", "account", "period"])
def test_a_figure_filter_beyond_the_database_is_not_found(client, world, real_errors, parameter, value):
    log_in(client, "admin")
    page = "/admin/dossier/ledger" if parameter != "year" else "/admin/dossier/"
    assert client.get(page, query_string={"id": world.a_public, parameter: value}).status_code == 404


@pytest.mark.parametrize("value", TOO_BIG + ["-1"])
def test_a_list_page_no_list_can_have_is_a_bad_request(client, world, real_errors, value):
    log_in(client, "admin")
    assert client.get("/admin/dossiers/", query_string={"page": value}).status_code == 400


def test_a_list_page_within_range_answers_an_empty_page(client, world, real_errors):
    log_in(client, "admin")
    assert client.get("/admin/dossiers/", query_string={"page": str(MAX_ID)}).status_code == 200


@pytest.mark.parametrize("value", TOO_BIG)
def test_posts_naming_an_id_beyond_the_database_change_nothing(client, world, real_errors, value):
    log_in(client, "admin")
    token = csrf_token(client)
    assert client.post("/admin/dossier/sync", data={"id": world.a_public, "link_id": value,
                                                    "csrf_token": token}).status_code == 404
    assert client.post("/admin/dossier-sync/refresh", data={"id": world.a_public, "connection_id": value,
                                                            "csrf_token": token}).status_code == 404
    assert client.post("/admin/connections/delete/", data={"id": value, "csrf_token": token}).status_code == 404
    assert client.post("/admin/connections/action/", data={"action": "check", "rowid": [value],
                                                           "csrf_token": token}).status_code == 400
    withdrawn = client.post("/admin/users/invitations/withdraw/", data={"id": value, "csrf_token": token})
    assert withdrawn.status_code == 302
    assert db.session.get(Connection, world.a_connection) is not None


@pytest.mark.parametrize("start, end", [
    ("9999-06-01", "9999-12-31"),  # the form failed: two years on is no date
    ("0001-01-01", "0001-12-31"),  # was saved, then the Sync tab failed laying out its periods
    ("1899-01-01", "1899-12-31"),
    ("2201-01-01", "2201-12-31"),
])
def test_a_fiscal_year_outside_the_calendar_is_refused_on_the_form(client, world, real_errors, start, end):
    log_in(client, "support")
    before = db.session.scalar(select(func.count(FiscalYear.id)))
    page = client.post("/admin/fiscal-years/new/", data={
        "dossier": world.a_grouped, "start": start, "end": end, "csrf_token": csrf_token(client)})
    assert page.status_code == 200
    assert "A fiscal year must fall between 1900-01-01 and 2200-12-31." in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count(FiscalYear.id))) == before
    edited = client.post(f"/admin/fiscal-years/edit/?id={world.a_year}", data={
        "dossier": world.a_public, "start": start, "end": end, "csrf_token": csrf_token(client)})
    assert edited.status_code == 200
    assert db.session.get(FiscalYear, world.a_year).start.year == 2024
    assert client.get(f"/admin/dossier/?id={world.a_public}").status_code == 200


HOSTILE_FIELDS = [str(2**63), "9" * 40, "1E30", "-1E30", "NaN", "Infinity", "9999-12-31", "0001-01-15", "abc",
                  "<script>alert(1)</script>"]


@pytest.mark.parametrize("value", HOSTILE_FIELDS)
def test_connection_forms_take_any_value_without_a_500(client, world, real_errors, value):
    """Every firm-level package's form (numbers, dates, URLs, choices from its schema) gets
    ``value`` in every field: a form with messages or a saved connection, never a 500."""
    log_in(client, "admin")
    token = csrf_token(client)
    for spec in registry.specs(level="firm"):
        fields = {key: value for key in spec.config_schema().fields}
        response = client.post(f"/admin/connections/new/?package={spec.key}",
                               data={**fields, "name": f"Hostile {spec.key}", "csrf_token": token})
        assert response.status_code in (200, 302), (spec.key, response.status_code)


@pytest.mark.parametrize("url, data", [
    ("/admin/dossiers/?search=a%00b", None),
    ("/admin/dossiers/?flt0_0=%00", None),
    ("/admin/dossier/ledger?id={public}&q=%00", None),
    ("/admin/groups/new/", {"name": "Team\x00"}),
])
def test_a_nul_character_is_a_bad_request(client, world, real_errors, url, data):
    """PostgreSQL refuses NUL characters in text: the console answers 400 before any query."""
    log_in(client, "admin")
    url = url.format(public=world.a_public)
    if data is None:
        response = client.get(url)
    else:
        response = client.post(url, data={**data, "csrf_token": csrf_token(client)})
    assert response.status_code == 400
