"""The audit-file upload on a file's Sync tab (/admin/dossier-sync/upload, kind ``audit_file``)."""
import io

from sqlalchemy import func, select

from app.extensions import db as database
from app.models import LedgerLine
from tests.audit_files.test_import import XAF
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)


def test_the_sync_tab_previews_then_uploads_an_audit_file(client, app):
    world = build_world()
    log_in(client, "staff")
    page = client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
    assert 'value="audit_file"' in page and 'name="preview"' in page

    def upload(**extra):
        return client.post("/admin/dossier-sync/upload", data={
            "csrf_token": csrf_token(client), "id": world.a_grouped, "kind": "audit_file",
            "file": (io.BytesIO(XAF), "books.xaf"), **extra}, content_type="multipart/form-data",
            follow_redirects=True).get_data(as_text=True)

    assert "Checked, nothing written: XAF 3.2" in upload(preview="1")
    assert database.session.scalar(select(func.count()).select_from(LedgerLine)) == 0
    assert "Uploaded XAF 3.2 of Bakkerij Janssens B.V." in upload()
    assert database.session.scalar(select(func.count()).select_from(LedgerLine).where(
        LedgerLine.dossier_id == world.a_grouped)) == 10
    bad = client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "kind": "audit_file",
        "file": (io.BytesIO(b"<auditfile xmlns='http://www.auditfiles.nl/XAF/3.2'>"), "broken.xaf")},
        content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "Nothing was uploaded: The file is not well-formed XML" in bad
    # another firm's file answers 404, whatever the form says
    assert client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.b_public, "kind": "audit_file",
        "file": (io.BytesIO(XAF), "books.xaf")}, content_type="multipart/form-data").status_code == 404


def test_the_sync_tab_classifies_accounts_by_a_reference_chart(client, app):
    from app.models import Account

    world = build_world()
    log_in(client, "admin")
    client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "kind": "audit_file",
        "file": (io.BytesIO(XAF.replace(b"<leadCode>WOmzNopOlh</leadCode>", b"")), "books.xaf")},
        content_type="multipart/form-data")
    kind = select(Account.kind).where(Account.dossier_id == world.a_grouped, Account.number == "8000")
    assert database.session.scalar(kind) == "expense"  # a P account without a code
    page = client.post("/admin/dossier-sync/classify", data={"csrf_token": csrf_token(client), "id": world.a_grouped,
                                                             "country": "nl"}, follow_redirects=True)
    assert "Accounts classified by the reference chart" in page.get_data(as_text=True)
    database.session.expire_all()
    assert database.session.scalar(kind) == "income"  # Dutch chart: 8000 Omzet
    # another firm's file answers 404
    assert client.post("/admin/dossier-sync/classify", data={
        "csrf_token": csrf_token(client), "id": world.b_public, "country": "nl"}).status_code == 404


def test_a_large_audit_file_imports_in_the_background_with_progress(client, app, workers):
    """Through the tab: the upload is queued, a real worker imports it, progress and outcome
    are polled as JSON, the kept file is removed."""
    from pathlib import Path

    from benchmarks.audit_file_samples import as_bytes, large_books, xaf

    world = build_world()
    log_in(client, "staff")
    data = as_bytes(xaf(large_books(2_400)))
    page = client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "kind": "audit_file", "background": "1",
        "file": (io.BytesIO(data), "big.xaf")}, content_type="multipart/form-data",
        follow_redirects=True).get_data(as_text=True)
    assert "is being imported in the background" in page and 'id="audit-file-task"' in page
    again = client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "kind": "audit_file", "background": "1",
        "file": (io.BytesIO(data), "big.xaf")}, content_type="multipart/form-data",
        follow_redirects=True).get_data(as_text=True)
    assert "already being imported" in again
    workers.start(burst=True)

    def finished():
        state = client.get(f"/admin/dossier-sync/audit-file-task?id={world.a_grouped}").get_json()
        return state if state["state"] in ("done", "failed") else None

    state = workers.wait_for(finished, what="the background import")
    assert state["ok"] is True and "Uploaded XAF 3.2" in state["message"] and "2400 lines" in state["message"]
    assert state["phase"] == "write" and state["done"] == 2000 and state["total"] == 2400
    assert database.session.scalar(select(func.count()).select_from(LedgerLine).where(
        LedgerLine.dossier_id == world.a_grouped)) == 2400
    assert not any((Path(app.instance_path) / "audit-uploads").iterdir())
    assert "Uploaded XAF 3.2" in client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
