"""Every documented operation, called with hostile parameter values, answers within the document
and never with a 500 (a deterministic walk over the OpenAPI document's parameters)."""
import itertools
from urllib.parse import quote

from tests.api.api_world import ApiClient, add_books, token_for
from tests.console_world import build_world, fresh_request_globals  # noqa: F401 (fixture)

HOSTILE = ["", "-1", "0", "2147483648", "9223372036854775808", "1E30", "abc", "0001-01-15", "2024-02-30",
           "<script>alert(1)</script>", "%00", "2024-01-01T00:00:00+14:00", "x" * 300]


def test_every_operation_survives_hostile_values(app, client):
    world = build_world()
    add_books(world.a_public, world.a_year, world.a_link)
    api = ApiClient(client, token_for(world.alpha, ("admin",), admin_id=world.user_admin))
    document = client.get("/api/v1/openapi.json").get_json()
    path_values = {"dossier_id": world.a_public, "connection_id": world.a_connection, "run_id": world.a_run}
    calls = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post"):
                continue
            url = path
            for name, value in path_values.items():
                url = url.replace("{" + name + "}", str(value))
            names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
            for name, value in itertools.product(names, HOSTILE):
                answer = api.call(method.upper(), f"{url}?{name}={quote(value)}",
                                  json_body={"dossier_ids": [value]} if method == "post" else None)
                assert answer.status_code < 500, (method, url, name, value, answer.get_data(as_text=True)[:300])
                calls += 1
            if method == "post":
                for body in ({}, {"dossier_ids": "1"}, {"dossier_ids": [2**40]}, {"dossier_ids": list(range(1, 600))},
                             {"dossier_ids": [world.a_public], "extra": 1}):
                    answer = api.post(url, body)
                    assert answer.status_code in (400, 404, 422), (body, answer.status_code)
                    calls += 1
            # path ids that no row can have
            if "{" in path:
                for value in ("0", "2147483648", "99999999999999999999"):
                    bad = path
                    for name in path_values:
                        bad = bad.replace("{" + name + "}", value)
                    answer = api.call(method.upper(), bad, validate=False)
                    assert answer.status_code in (404, 405, 422), (bad, answer.status_code)  # 422: a required parameter is missing
                    calls += 1
    assert calls > 200 and api.checked > 200
