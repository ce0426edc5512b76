"""Response hardening: a Content-Security-Policy that allows no inline script without the
request's nonce and no inline event handler in any page, no caching of pages, no server
version, HSTS in production; production refuses a Redis without password; instance files are
their owner's only; an expired form says nothing was saved."""
import os
import re
import stat
import time

import pytest

from app import create_app
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
PAGES = ["/admin/", "/admin/dossiers/", "/admin/connections/", "/admin/connections/new/?kind=accounting",
         "/admin/runs/", "/admin/users/", "/admin/groups/", "/admin/audit/", "/admin/new-client/", "/account"]


@pytest.fixture
def world(db):
    return build_world()


def script_src(policy):
    return next(part for part in policy.split(";") if part.strip().startswith("script-src")).split()[1:]


def test_every_console_page_has_a_nonce_policy_and_no_inline_handler(client, world):
    log_in(client, "admin")
    for url in PAGES + [f"/admin/dossier/?id={world.a_public}", f"/admin/dossier-sync/?id={world.a_public}"]:
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response.headers["Content-Security-Policy"]
        sources = script_src(policy)
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, url
        nonce = next(s for s in sources if s.startswith("'nonce-"))[len("'nonce-"):-1]
        html = response.get_data(as_text=True)
        assert not INLINE_HANDLER.search(html), (url, INLINE_HANDLER.search(html).group(0))
        assert "javascript:" not in html.split("<body", 1)[1].replace('href="javascript:void(0)"', ""), url
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert f'nonce="{nonce}"' in tag or 'type="application/json"' in tag, (url, tag)
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_pages_are_not_cached_and_name_no_server_version(client, world):
    log_in(client, "admin")
    for url in ("/admin/", "/login", "/portal/", f"/admin/dossier/?id={world.a_public}"):
        response = client.get(url)
        assert response.headers["Cache-Control"] == "no-store", url
        assert response.headers["Server"] == "Firmsync", url
    static = client.get("/admin/static/admin/js/helpers.js")
    assert static.status_code == 200 and static.headers.get("Cache-Control") != "no-store"


def production_app(tmp_path, **settings):
    values = {"SECRET_KEY": "production-secret-key-for-tests", "SQLALCHEMY_DATABASE_URI": "sqlite://",
              "ENCRYPTION_KEYS": "Pz7v7lH6o0oUuWcT9nW0b3r7bXqkQk5a0lX4c2p9y1E=",
              "REDIS_URL": "redis://:s3cret-redis-pass@127.0.0.1:6379/0", **settings}
    os.environ["FIRMSYNC_INSTANCE_PATH"] = str(tmp_path / "instance")
    try:
        return create_app("production", **values)
    finally:
        os.environ.pop("FIRMSYNC_INSTANCE_PATH")


def test_production_refuses_a_redis_without_password(tmp_path):
    with pytest.raises(RuntimeError, match="REDIS_URL must carry a password"):
        production_app(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    assert production_app(tmp_path) is not None


def test_production_sends_hsts_over_https_only(tmp_path):
    app = production_app(tmp_path)
    over_tls = app.test_client().get("/login", base_url="https://firmsync.example")
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in app.test_client().get("/login").headers


def test_instance_files_are_their_owners_only(tmp_path):
    instance = tmp_path / "instance"
    os.environ["FIRMSYNC_INSTANCE_PATH"] = str(instance)
    try:
        create_app("development", SQLALCHEMY_DATABASE_URI=None, SECRET_KEY=None, ENCRYPTION_KEYS=None)
    finally:
        os.environ.pop("FIRMSYNC_INSTANCE_PATH")
    for name in ("secret.key", "encryption.key", "firmsync.db"):
        mode = stat.S_IMODE((instance / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700


def test_an_existing_shared_folder_is_never_made_private(tmp_path):
    """A database file in a folder that exists (here one open to all, like /tmp) leaves the folder alone."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    os.environ["FIRMSYNC_INSTANCE_PATH"] = str(tmp_path / "instance")
    try:
        create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{shared}/firmsync.db")
    finally:
        os.environ.pop("FIRMSYNC_INSTANCE_PATH")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "firmsync.db").stat().st_mode) == 0o600


def test_an_expired_form_says_nothing_was_saved(app, client, world):
    log_in(client, "admin")
    token = csrf_token(client)
    app.config["WTF_CSRF_TIME_LIMIT"] = 1
    try:
        later = time.time() + 5
        real_time = time.time
        time.time = lambda: later  # itsdangerous reads the clock through time.time
        try:
            response = client.post("/admin/dossiers/new/", data={"name": "Late", "country": "BE", "currency": "EUR",
                                                                  "frequency": "month", "csrf_token": token})
        finally:
            time.time = real_time
    finally:
        app.config["WTF_CSRF_TIME_LIMIT"] = 12 * 3600
    assert response.status_code == 400
    assert "Nothing was saved" in response.get_data(as_text=True)
