"""HttpClient: an answer cut mid-way or unreadable is asked for once more before it is a data error."""
import pytest
import requests

from connectors.base import DataError
from connectors.http import HttpClient

URL = "https://api.example.test/v1/pages/2"


def client():
    return HttpClient("Xero", secrets=[], sleep=lambda seconds: None)


@pytest.mark.parametrize("cut", [requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"),
                                 requests.exceptions.ContentDecodingError("gzip: truncated stream")])
def test_a_cut_answer_is_asked_for_once_more(requests_mock, cut):
    requests_mock.get(URL, [{"exc": cut}, {"json": {"items": [1, 2]}}])
    http = client()
    assert http.get_json(URL) == {"items": [1, 2]}
    assert requests_mock.call_count == 2 and http.api_calls == 2


def test_an_answer_cut_twice_is_a_data_error_saying_what_arrived(requests_mock):
    requests_mock.get(URL, exc=requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(10 bytes)"))
    with pytest.raises(DataError) as caught:
        client().get(URL)
    assert requests_mock.call_count == 2, "one retry, not the 5xx budget"
    assert "incomplete answer" in caught.value.message and "try again" not in caught.value.message
    assert "IncompleteRead" in caught.value.detail and "/v1/pages/2" in caught.value.detail


def test_a_truncated_json_body_is_asked_for_once_more(requests_mock):
    requests_mock.get(URL, [{"text": '{"items": [1, 2'}, {"json": {"items": [1, 2, 3]}}])
    assert client().get_json(URL) == {"items": [1, 2, 3]}
    assert requests_mock.call_count == 2


def test_a_body_unreadable_twice_is_a_data_error_with_what_arrived(requests_mock):
    requests_mock.post(URL, text='{"items": [1, 2')
    with pytest.raises(DataError) as caught:
        client().post_json(URL, json={"page": 2})
    assert requests_mock.call_count == 2
    assert "could not read" in caught.value.message
    assert "received 15 bytes" in caught.value.detail


def test_a_status_error_is_not_asked_for_again(requests_mock):
    requests_mock.get(URL, status_code=422, json={"message": "bad filter"})
    with pytest.raises(DataError):
        client().get_json(URL)
    assert requests_mock.call_count == 1


def test_read_json_asks_a_connectors_own_call_once_more(requests_mock):
    requests_mock.get(URL, [{"text": "[1, 2"}, {"json": [1, 2]}])
    http = client()
    assert http.read_json(lambda: http.request("GET", URL)) == [1, 2]
    assert requests_mock.call_count == 2
