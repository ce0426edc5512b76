"""Who may see a file (private flag, people and groups with access) is changed by administrators
only: the other roles' forms lack those fields, and a forged post is refused server-side."""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Dossier, User
from tests.console_world import EMAILS, build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401


@pytest.fixture
def world(db):
    return build_world()


def edit_page(client, dossier_id):
    return client.get(f"/admin/dossiers/edit/?id={dossier_id}").get_data(as_text=True)


def test_staff_edit_form_has_no_access_fields_but_the_admins_has(client, world):
    log_in(client, "staff")
    page = edit_page(client, world.a_public)
    assert 'name="name"' in page
    for field in ('name="private"', 'name="users"', 'name="groups"'):
        assert field not in page
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    log_in(client, "admin")
    page = edit_page(client, world.a_public)
    assert 'name="private"' in page and 'name="users"' in page and 'name="groups"' in page


def test_a_staff_contributor_cannot_open_a_private_file_to_an_external(client, world):
    """The reported path: untick Private and add an external contributor; the external must not get in."""
    dossier = db.session.get(Dossier, world.a_grouped)
    staff = db.session.scalar(select(User).where(User.email == EMAILS["staff"]))
    external = db.session.scalar(select(User).where(User.email == EMAILS["external"]))
    dossier.private = True
    dossier.users.append(staff)
    db.session.commit()
    before = sorted(u.email for u in dossier.users)
    log_in(client, "staff")
    answer = client.post(f"/admin/dossiers/edit/?id={dossier.id}", data={
        "name": dossier.name, "country": dossier.country, "currency": dossier.currency,
        "frequency": dossier.frequency, "users": [str(staff.id), str(external.id)],
        "csrf_token": csrf_token(client)})
    assert answer.status_code in (200, 302)
    db.session.expire_all()
    dossier = db.session.get(Dossier, world.a_grouped)
    assert dossier.private is True and sorted(u.email for u in dossier.users) == before
