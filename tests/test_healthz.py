"""Health: ``GET /healthz`` (no login, no secrets, 200 or 503) and the console's System health
screen (workers, queues, oldest queued run, deferred runs; support sees every firm, an
administrator their own firm's runs, nobody else the screen)."""
from datetime import timedelta

import pytest
from rq import Worker

from app import create_app
from app.extensions import db
from app.models import RunStatus, SyncRun
from app.models.base import utcnow
from app.redis_connection import init_redis, redis_connection
from app.services.queues import JOB_SERIALIZER, get_queue
from tests.conftest import free_port
from tests.console_world import build_world, log_in


@pytest.fixture
def redis_away(app):
    """Point the app's Redis clients at a port nobody listens on (the suite's Redis is untouched);
    restored after the test."""
    real = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    init_redis(app)
    yield
    app.config["REDIS_URL"] = real
    init_redis(app)


def database_away_app(redis_url, tmp_path, monkeypatch, **settings):
    """An application whose PostgreSQL does not answer (nothing listens on its port)."""
    monkeypatch.setenv("FIRMSYNC_INSTANCE_PATH", str(tmp_path))
    return create_app("testing", SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://firmsync:s3cret-pw@127.0.0.1:{free_port()}/gone",
                      REDIS_URL=redis_url, **settings)


def test_healthz_answers_ok_without_a_login(client, app):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == body["database"] == body["redis"] == "ok"
    assert set(body) == {"status", "database", "redis", "checked_at"}
    assert "redis://" not in response.get_data(as_text=True)


def test_healthz_answers_503_while_redis_is_away(client, app, redis_away):
    response = client.get("/healthz")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json() | {"checked_at": None} == {"status": "unavailable", "database": "ok",
                                                         "redis": "unavailable", "checked_at": None}


def test_healthz_answers_503_while_the_database_is_away_and_names_no_secret(redis_url, tmp_path, monkeypatch):
    down = database_away_app(redis_url, tmp_path, monkeypatch)
    response = down.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unavailable" and response.get_json()["redis"] == "ok"
    text = response.get_data(as_text=True)
    assert "s3cret-pw" not in text and "127.0.0.1" not in text


# ---------------------------------------------------------------- the System health screen

@pytest.fixture
def health_world(app):
    world = build_world()
    long_ago = utcnow() - timedelta(hours=3)
    queued = SyncRun(firm_id=db.session.get(SyncRun, world.a_run).firm_id, dossier_id=world.a_public,
                     link_id=world.a_link, status=RunStatus.QUEUED, queued_at=long_ago)
    deferred_b = SyncRun(firm_id=db.session.get(SyncRun, world.b_run).firm_id, dossier_id=world.b_public,
                         link_id=world.b_link, status=RunStatus.DEFERRED, resume_at=utcnow() + timedelta(hours=1),
                         error_category="rate_limited", message="Beta waits for the package's daily budget.")
    db.session.add_all([queued, deferred_b])
    db.session.commit()
    world.ids.update(queued_a=queued.id, deferred_b=deferred_b.id)
    return world


def test_support_sees_workers_queues_and_every_firms_stuck_runs(client, health_world):
    redis = redis_connection()
    worker = Worker([get_queue("sync", connection=redis)], connection=redis, name="health-check-worker",
                    serializer=JOB_SERIALIZER)
    worker.register_birth()
    get_queue("default", connection=redis).enqueue("jobs.cron.nightly_tick", job_id="health-check-waiting")
    log_in(client, "support")
    html = client.get("/admin/system-health/").get_data(as_text=True)
    assert 'id="workers-alive" data-count="1"' in html and "health-check-worker" in html
    assert '<tr data-queue="default"><td>default</td><td class="waiting">1</td>' in html
    assert f'id="oldest-queued" data-run="{health_world.queued_a}"' in html and "Alpha Public Ltd" in html
    assert f'<tr data-run="{health_world.deferred_b}">' in html and "daily budget" in html


def test_an_administrator_sees_only_their_firms_runs(client, health_world):
    log_in(client, "admin")
    html = client.get("/admin/system-health/").get_data(as_text=True)
    assert f'data-run="{health_world.queued_a}"' in html
    assert 'id="deferred-runs" data-count="0"' in html and "Beta" not in html
    assert 'id="no-workers"' in html  # no worker registered in this test


@pytest.mark.parametrize("role, status", [("staff", 403), ("external", 403), ("anonymous", 302)])
def test_other_roles_do_not_see_the_screen(client, health_world, role, status):
    log_in(client, role)
    response = client.get("/admin/system-health/")
    assert response.status_code == status
    if status == 302:
        assert "/login" in response.headers["Location"]


def test_the_screen_says_redis_is_away_and_still_shows_the_runs(client, health_world, redis_away):
    log_in(client, "support")
    response = client.get("/admin/system-health/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="redis-unavailable"' in html and 'id="queued-runs" data-count="1"' in html
