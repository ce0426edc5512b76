"""Secrets never reach a log: the web servers' request lines for OAuth and grant callbacks lose their
query strings, and credential-shaped text is masked in every record."""
import logging

import pytest

from app.secret_scrubbing import ACCESS_LOGGERS

CALLBACKS = [
    "/oauth/callback?code=4f2b9c-oauth-code-77&state=st-81d2e",
    "/oauth/callback?token=economic-grant-token-3c9a&state=st-81d2e",  # e-conomic's agreement grant
    "/sandbox/oauth/authorize?client_id=sandbox-client-5d1&code_challenge=abc123secretish",
]


@pytest.fixture
def access_log(app, caplog):
    """``line(logger, target)`` logs a request line as werkzeug does and answers what was written."""
    def line(logger_name, target):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=logger_name):
            logging.getLogger(logger_name).info('%s - - [%s] "%s" %s %s', "127.0.0.1", "05/Dec/2026 21:00:00",
                                                f"GET {target} HTTP/1.1", "302", "-")
        return caplog.text
    return line


@pytest.mark.parametrize("logger_name", ACCESS_LOGGERS)
@pytest.mark.parametrize("target", CALLBACKS)
def test_callback_query_strings_never_reach_the_access_log(access_log, logger_name, target):
    written = access_log(logger_name, target)
    path, _, query = target.partition("?")
    assert f"GET {path}?*** HTTP/1.1" in written
    for value in query.split("&"):
        assert value.split("=", 1)[1] not in written


def test_other_request_lines_keep_their_query_but_lose_credentials(access_log):
    written = access_log("werkzeug", "/admin/dossiers/?page=2&api_key=live-key-9f8e7d")
    assert "/admin/dossiers/?page=2&api_key=***" in written and "live-key-9f8e7d" not in written


def test_invitation_tokens_never_reach_the_access_log(access_log):
    token = "Yq3v9XbZ0kP1wR7tL2mN8sD4fG6hJ5cA"
    for target in (f"/invitation/{token}", f"/login?next=/invitation%2F{token}"):
        written = access_log("werkzeug", target)
        assert token not in written and "invitation" in written
