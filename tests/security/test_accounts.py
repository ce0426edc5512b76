"""Adding someone to a firm is an invitation they accept (#19 item 3).

An administrator of one firm cannot attach another firm's user, learn from the Users screen
whether an e-mail has an account, rename a person who also works elsewhere, or see when they
logged in to another firm.
"""
import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Membership, Role, User
from app.models.base import utcnow
from app.models.firm import Invitation
from tests.conftest import csrf_from, login
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

NEW_PASSWORD = "plum tractor velvet 42"


@pytest.fixture
def world(db):
    return build_world()


def invite(client, email, role="staff"):
    """Add ``email`` on the Users screen; answers the page shown after the redirect."""
    response = client.post("/admin/users/new/", data={"email": email, "role": role, "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def invitation_path(page):
    return re.search(r"/invitation/[\w-]+", page).group(0)


def memberships_of(user_id):
    db.session.expire_all()
    return sorted(m.firm_id for m in db.session.query(Membership).filter_by(user_id=user_id))


def test_adding_another_firms_user_records_an_invitation_not_a_membership(client, world):
    log_in(client, "admin")
    page = invite(client, "ADMIN@beta.test", role="external")

    assert memberships_of(world.user_admin_b) == [world.beta]
    invitation = db.session.query(Invitation).one()
    assert (invitation.firm_id, invitation.email, invitation.role) == (world.alpha, "admin@beta.test", "external")
    assert "admin@beta.test" in page and "/invitation/" in page


def test_the_users_screen_answers_the_same_whether_the_email_has_an_account(client, world):
    log_in(client, "admin")
    existing = invite(client, "admin@beta.test")
    unknown = invite(client, "nobody@elsewhere.test")

    def neutral(page):
        page = re.sub(r"/invitation/[\w-]+", "/invitation/TOKEN", page)
        page = re.sub(r'name="csrf_token"[^>]*>', "", page)
        page = re.sub(r'data-invitation-id="\d+"|name="id" value="\d+"', "", page)
        page = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "TIME", page)
        return page.replace("admin@beta.test", "EMAIL").replace("nobody@elsewhere.test", "EMAIL")

    flash = re.compile(r'<div class="alert[^>]*>.*?</div>', re.S)
    assert [neutral(m) for m in flash.findall(existing)] == [neutral(m) for m in flash.findall(unknown)]
    assert flash.findall(existing), "the invitation is confirmed"
    assert db.session.query(User).filter_by(email="nobody@elsewhere.test").count() == 0


def test_the_invited_person_accepts_with_their_own_account(client, app, world):
    log_in(client, "admin")
    path = invitation_path(invite(client, "admin@beta.test", role="external"))

    invitee = app.test_client()
    assert "/login" in invitee.get(path).get_data(as_text=True)  # log in first
    response = login(invitee, "admin@beta.test")
    assert response.status_code == 302
    accept_page = invitee.get(path)
    assert "Alpha Accountants" in accept_page.get_data(as_text=True)
    answer = invitee.post(path, data={"answer": "accept", "csrf_token": csrf_from(accept_page)})
    assert answer.status_code == 302

    assert memberships_of(world.user_admin_b) == [world.alpha, world.beta]
    membership = db.session.query(Membership).filter_by(user_id=world.user_admin_b, firm_id=world.alpha).one()
    assert membership.role == Role.EXTERNAL
    assert invitee.get(path).status_code == 404  # the link works once


def test_the_invited_person_may_decline(client, app, world):
    log_in(client, "admin")
    path = invitation_path(invite(client, "admin@beta.test"))
    invitee = app.test_client()
    login(invitee, "admin@beta.test")
    page = invitee.get(path)
    invitee.post(path, data={"answer": "decline", "csrf_token": csrf_from(page)})

    assert memberships_of(world.user_admin_b) == [world.beta]
    assert db.session.query(Invitation).count() == 0


def test_someone_else_logged_in_cannot_accept(client, app, world):
    log_in(client, "admin")
    path = invitation_path(invite(client, "admin@beta.test"))
    other = app.test_client()
    login(other, "staff@beta.test")
    response = other.get(path)
    assert response.status_code == 403
    token = csrf_token(other)
    assert other.post(path, data={"answer": "accept", "csrf_token": token}).status_code == 403

    assert memberships_of(world.user_admin_b) == [world.beta]
    assert memberships_of(world.user_staff_b) == [world.beta]


def test_a_new_person_chooses_their_name_and_a_strong_password(client, app, world):
    log_in(client, "admin")
    path = invitation_path(invite(client, "newcomer@alpha.test"))
    newcomer = app.test_client()
    page = newcomer.get(path)
    token = csrf_from(page)

    weak = newcomer.post(path, data={"name": "New Comer", "password": "password1234", "confirm": "password1234",
                                     "csrf_token": token})
    assert weak.status_code == 400 and "too common" in weak.get_data(as_text=True)
    assert db.session.query(User).filter_by(email="newcomer@alpha.test").count() == 0

    joined = newcomer.post(path, data={"name": "New Comer", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                       "csrf_token": token})
    assert joined.status_code == 302
    user = db.session.query(User).filter_by(email="newcomer@alpha.test").one()
    assert user.name == "New Comer" and user.check_password(NEW_PASSWORD)
    assert memberships_of(user.id) == [world.alpha]
    assert newcomer.get("/admin/").status_code == 200


def test_an_expired_or_withdrawn_invitation_does_not_work(client, app, world):
    log_in(client, "admin")
    expired = invitation_path(invite(client, "late@alpha.test"))
    db.session.query(Invitation).filter_by(email="late@alpha.test").one().expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    withdrawn = invitation_path(invite(client, "admin@beta.test"))
    invitation = db.session.query(Invitation).filter_by(email="admin@beta.test").one()
    page = client.get("/admin/users/").get_data(as_text=True)
    assert "admin@beta.test" in page and "late@alpha.test" not in page  # expired ones are not pending
    client.post("/admin/users/invitations/withdraw/", data={"id": str(invitation.id), "csrf_token": csrf_token(client)})

    visitor = app.test_client()
    assert visitor.get(expired).status_code == 404
    assert visitor.get(withdrawn).status_code == 404


def test_another_firms_administrator_cannot_withdraw_an_invitation(client, app, world):
    log_in(client, "admin")
    invite(client, "someone@alpha.test")
    invitation = db.session.query(Invitation).one()
    beta_admin = app.test_client()
    login(beta_admin, "admin@beta.test")
    beta_admin.post("/admin/users/invitations/withdraw/", data={"id": str(invitation.id),
                                                                "csrf_token": csrf_token(beta_admin)})
    assert db.session.query(Invitation).count() == 1


@pytest.fixture
def shared_person(world):
    """staff@beta.test also works in firm A (as staff)."""
    db.session.add(Membership(user_id=world.user_staff_b, firm_id=world.alpha, role=Role.STAFF))
    db.session.commit()
    return db.session.query(Membership).filter_by(user_id=world.user_staff_b, firm_id=world.alpha).one()


def test_an_administrator_cannot_rename_someone_who_works_in_another_firm(client, world, shared_person):
    log_in(client, "admin")
    response = client.post(f"/admin/users/edit/?id={shared_person.id}", data={
        "name": "Renamed By Alpha", "role": "staff", "multi_file_access": "y", "csrf_token": csrf_token(client)})
    assert "they change their name themselves" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, world.user_staff_b).name == "Staff"


def test_a_person_working_in_one_firm_can_still_be_renamed_by_its_administrator(client, world):
    log_in(client, "admin")
    client.post(f"/admin/users/edit/?id={world.membership_staff}", data={
        "name": "Stella Staff", "role": "staff", "multi_file_access": "y", "csrf_token": csrf_token(client)})
    db.session.expire_all()
    assert db.session.get(User, world.user_staff).name == "Stella Staff"


def test_each_firm_sees_only_the_logins_to_itself(client, app, world, shared_person):
    person = app.test_client()
    login(person, "staff@beta.test")  # lands in firm A (the first firm)
    log_in(client, "admin")
    alpha_page = client.get("/admin/users/").get_data(as_text=True)

    beta_admin = app.test_client()
    login(beta_admin, "admin@beta.test")
    beta_page = beta_admin.get("/admin/users/").get_data(as_text=True)

    def row_of(page, email):
        return next(row for row in re.findall(r"<tr.*?</tr>", page, re.S) if email in row)

    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", row_of(alpha_page, "staff@beta.test"))
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", row_of(beta_page, "staff@beta.test"))
