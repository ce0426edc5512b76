"""The response journal (connectors/response_journal.py) and the HttpClient's parking and replay."""
import zlib

import pytest
import requests

from connectors.base import RateBudget, RateLimited
from connectors.http import HttpClient
from connectors.response_journal import ResponseJournal, full_url, holds_credential, journaled, kept_headers, request_key

URL = "https://api.example.test/v1/journals"
TOKEN_URL = "https://identity.example.test/connect/token"


def client(journal=None, **kwargs):
    return HttpClient("Xero", sleep=kwargs.pop("sleeps", []).append, journal=journal, **kwargs)


def resumed(journal):
    """A new attempt's journal, loaded with what ``journal`` recorded (as the job does via the database)."""
    again = ResponseJournal()
    again.load(list(journal.new_answers()))
    return again


def test_the_key_names_method_url_query_and_body_but_never_headers():
    key = request_key("GET", URL, params={"offset": 100, "page": 2})
    assert key == request_key("get", URL + "?offset=100&page=2")  # params encoded as requests sends them
    assert key != request_key("GET", URL, params={"offset": 200, "page": 2})
    assert key != request_key("POST", URL, params={"offset": 100, "page": 2})
    assert request_key("POST", URL, json={"a": 1, "b": [2]}) == request_key("POST", URL, json={"b": [2], "a": 1})
    assert request_key("POST", URL, json={"a": 1}) != request_key("POST", URL, json={"a": 2})
    assert request_key("POST", URL, data="<page>1</page>") != request_key("POST", URL, data="<page>2</page>")
    assert len(key) == 64 and "offset" not in key  # a hash: nothing of the request is readable


@pytest.mark.parametrize("url, params", [
    (URL, {"offset": 100, "page": 2}), (URL + "?y=1", {"$filter": "Date ge 2024-01-01 and x eq 'é'", "n": None}),
    (URL, [("a", 1), ("a", 2)]), (URL, {"l": [1, 2], "b": True}), (URL, "a=1&b=2"), (URL, {"n": None}), (URL, None),
])
def test_the_full_url_is_the_one_requests_sends(url, params):
    assert full_url(url, params) == requests.Request("GET", url, params=params).prepare().url


def test_credential_exchanges_are_never_journaled():
    assert not journaled(TOKEN_URL)
    assert not journaled("https://api.example.test/oauth2/v2.0/token?x=1")
    assert not journaled("https://api.example.test/api/Login")
    assert not journaled("https://api.example.test/session/open")
    assert journaled(URL + "?page=2") and journaled("https://api.example.test/companies/7/ledger-lines")
    assert kept_headers({"Content-Type": "application/json", "Set-Cookie": "sid=1", "X-Api-Key": "k",
                         "Link": "<next>", "X-Session-Id": "s", "Content-Encoding": "gzip"}) == \
        {"Content-Type": "application/json", "Link": "<next>"}


def test_a_resumed_attempt_is_answered_from_the_journal_without_calls_then_continues_live(requests_mock):
    pages = requests_mock.get(URL, [{"json": {"page": 1}, "headers": {"Link": "<p2>", "Set-Cookie": "sid=9"}},
                                    {"json": {"page": 2}}, {"json": {"page": "live"}}])
    first = client(ResponseJournal(), auth=("user", "pw"))
    assert first.get_json(URL, params={"page": 1}) == {"page": 1}
    assert first.get_json(URL, params={"page": 2}) == {"page": 2}
    assert first.api_calls == 2 and first.journal.recorded == 2 and pages.call_count == 2

    second = client(resumed(first.journal))
    replayed = second.get(URL, params={"page": 1})
    assert replayed.json() == {"page": 1} and replayed.headers["Link"] == "<p2>"
    assert "Set-Cookie" not in replayed.headers and replayed.url == URL + "?page=1"
    assert second.get_json(URL, params={"page": 2}) == {"page": 2}
    assert pages.call_count == 2 and second.api_calls == 0 and second.journal.replayed == 2
    # each kept answer is handed out once: the same request again goes to the package
    assert second.get_json(URL, params={"page": 2}) == {"page": "live"}
    assert pages.call_count == 3 and second.api_calls == 1 and second.journal.recorded == 1


def test_tokens_and_answers_carrying_credentials_are_never_kept(requests_mock):
    requests_mock.post(TOKEN_URL, json={"access_token": "at-1", "expires_in": 1800})
    requests_mock.post(URL, json={"sessionId": "abc", "rows": []})
    requests_mock.get(URL, text='<Login><Password>pw-1</Password></Login>')
    journal = ResponseJournal()
    http = client(journal)
    http.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": "rt-secret"})
    http.post(URL, json={"method": "list"}, headers={"Authorization": "Bearer at-1"})
    http.get(URL)
    assert journal.recorded == 0
    http.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": "rt-secret"})
    assert requests_mock.call_count == 4  # never answered from the journal


def test_a_read_naming_a_credential_is_kept_with_the_credential_blanked(requests_mock):
    # Xero's Organisation carries an APIKey: refusing it made every resume ask for it again
    body = b'{"Organisations": [{"Name": "Demo \\"Ltd\\"", "APIKey": "K3Y\\"S3CR3T", "session_id": "s-1", "BaseCurrency": "GBP"}]}'
    requests_mock.get(URL, content=body, headers={"Content-Type": "application/json"})
    journal = ResponseJournal()
    client(journal).get(URL)
    assert journal.recorded == 1
    stored = [zlib.decompress(answer.body) for answer in journal.new_answers()]
    assert b"S3CR3T" not in stored[0] and b"s-1" not in stored[0]
    http = client(resumed(journal))
    organisation = http.get(URL).json()["Organisations"][0]
    assert organisation == {"Name": 'Demo "Ltd"', "APIKey": "", "session_id": "", "BaseCurrency": "GBP"}
    assert requests_mock.call_count == 1 and http.api_calls == 0


@pytest.mark.parametrize("body", [b'{"apiKey": null, "rows": []}', b'{"rows": [], "password": 12345}',
                                  b'{"Type": "password", "Value": "x"}'])
def test_a_read_whose_credential_cannot_be_blanked_is_not_kept(requests_mock, body):
    requests_mock.get(URL, content=body)
    journal = ResponseJournal()
    client(journal).get(URL)
    assert journal.recorded == 0


@pytest.mark.parametrize("body, held", [
    (b'{"access_token": "x"}', True), (b'{"Access_Token":"x"}', True), (b'{"refreshToken": "x"}', True),
    (b'{"id_token": "x"}', True), (b"<Password>x</Password>", True), (b"{'ClientSecret': 'x'}", True),
    (b'{"apiKey": "x"}', True), (b'{"API_KEY": "x"}', True), (b'{"SessionId": "x"}', True),
    (b'{"session_token": "x"}', True), (b'{"AuthToken": "x"}', True), (b'{"bearer": "x"}', True),
    (b'{"Journals": [{"Description": "token of appreciation", "AccountCode": "400"}]}', False),
    (b'{"Keys": ["session", "password reset fee"]}', False), (b"", False),
])
def test_only_bodies_naming_a_credential_field_are_refused(body, held):
    assert holds_credential(body) is held


def test_errors_are_not_kept(requests_mock):
    requests_mock.get(URL, [{"status_code": 404, "json": {}}, {"json": {"ok": True}}])
    journal = ResponseJournal()
    with pytest.raises(Exception):
        client(journal).get(URL)
    assert journal.recorded == 0


def test_bodies_spill_to_a_file_and_come_back_whole(requests_mock):
    big = {"rows": [{"id": i, "text": f"line {i} " * 20} for i in range(300)]}
    requests_mock.get(URL, json=big)
    journal = ResponseJournal(spill_after=1024)
    http = client(journal)
    for page in range(5):
        http.get(URL, params={"page": page})
    assert journal._spill._rolled  # written to the temp file, not kept in memory
    again = resumed(journal)
    assert all(client(again).get_json(URL, params={"page": page}) == big for page in range(5))


def test_a_long_budget_wait_parks_instead_of_sleeping(requests_mock, redis_db):
    from connectors.rate_limit import RateLimiter

    requests_mock.get(URL, json={"ok": True})
    budget = RateBudget(per_minute=1, window_seconds=60)
    sleeps = []
    http = client(ResponseJournal(), limiter=RateLimiter(redis_db), budget=budget, budget_key=("xero", "t1"),
                  max_wait=65.0, park_after=5.0, sleeps=sleeps)
    http.get(URL, params={"page": 1})
    with pytest.raises(RateLimited) as caught:
        http.get(URL, params={"page": 2})
    assert caught.value.parked and not caught.value.daily and 5 < caught.value.retry_after <= 60
    assert sleeps == [] and requests_mock.call_count == 1

    # without parking the same wait is slept out in the worker (one minute window)
    class Slept(Exception):
        pass

    def sleep(seconds):
        sleeps.append(seconds)
        raise Slept

    redis_db.flushdb()
    sleeping = HttpClient("Xero", sleep=sleep, limiter=RateLimiter(redis_db), budget=budget,
                          budget_key=("xero", "t1"), max_wait=65.0)
    sleeping.get(URL)
    with pytest.raises(Slept):
        sleeping.get(URL)
    assert 5 < sleeps[0] <= 60


def test_an_answer_recorded_in_this_attempt_is_not_handed_out_again_in_it(requests_mock):
    requests_mock.get(URL, [{"text": '{"rows": [1, '}, {"json": {"rows": [1, 2]}}])  # cut, then whole
    journal = ResponseJournal()
    assert client(journal).get_json(URL) == {"rows": [1, 2]}  # asked again live, not from the journal
    assert requests_mock.call_count == 2 and journal.replayed == 0
