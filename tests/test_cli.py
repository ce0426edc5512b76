"""The ``flask`` commands: users create, crypto rotate-keys, seed demo."""
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select, text

from app.access import actor_for, visible_dossier_ids
from app.crypto import Keyring, init_keyring
from app.demo_seed import LOGINS
from app.models import (
    Connection, Dossier, Firm, Group, Membership, Role, User, dossier_groups, dossier_users, group_members,
)
from tests.conftest import make_user


@pytest.fixture
def flask_cli(app):
    """``flask_cli("users", "create", ...)`` runs a command and returns click's result."""
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=list(args))

    return invoke


def user_by_email(db, email):
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


# flask users create

def test_users_create_makes_a_user_with_a_membership(db, firm, flask_cli):
    result = flask_cli("users", "create", "--email", "Nora@Example.BE", "--password", "a-long-password",
                       "--name", "Nora", "--firm", firm.name, "--role", Role.STAFF, "--can-create-files")

    assert result.exit_code == 0, result.output
    user = user_by_email(db, "nora@example.be")
    assert user is not None and user.check_password("a-long-password")
    membership = user.membership_for(firm.id)
    assert (membership.role, membership.can_create_files) == (Role.STAFF, True)


def test_users_create_refuses_a_short_password(db, firm, flask_cli):
    result = flask_cli("users", "create", "--email", "short@example.be", "--password", "too-short",
                       "--firm", firm.name)

    assert result.exit_code != 0
    assert "at least 10 characters" in result.output
    assert user_by_email(db, "short@example.be") is None


def test_users_create_adds_a_membership_to_an_existing_user(db, firm, other_firm, flask_cli):
    make_user("shared@example.be", firm, Role.ADMIN)

    result = flask_cli("users", "create", "--email", "shared@example.be", "--password", "another-password",
                       "--firm", other_firm.name, "--role", Role.EXTERNAL)

    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 1
    user = user_by_email(db, "shared@example.be")
    roles = {m.firm_id: m.role for m in user.memberships}
    assert roles == {firm.id: Role.ADMIN, other_firm.id: Role.EXTERNAL}


# flask crypto rotate-keys

def stored_credentials(db):
    return db.session.execute(text("SELECT credentials FROM connection")).scalar_one()


def test_rotate_keys_reencrypts_credentials_with_the_new_key(app, db, firm, flask_cli):
    old_key = app.config["ENCRYPTION_KEYS"]
    new_key = Fernet.generate_key().decode()
    secret = {"api_key": "sk-live-1234567890", "username": "demo"}
    db.session.add(Connection(firm=firm, package="demo", name="Demo Books", credentials=secret))
    db.session.commit()
    with pytest.raises(ValueError):
        Keyring([new_key]).decrypt(stored_credentials(db))  # the new key alone cannot read it yet

    app.config["ENCRYPTION_KEYS"] = f"{new_key},{old_key}"
    init_keyring(app)
    result = flask_cli("crypto", "rotate-keys")
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 value" in result.output

    token = stored_credentials(db).encode()
    Fernet(new_key.encode()).decrypt(token)
    with pytest.raises(InvalidToken):
        Fernet(old_key.encode()).decrypt(token)
    app.config["ENCRYPTION_KEYS"] = new_key
    init_keyring(app)
    db.session.expire_all()
    assert db.session.scalar(select(Connection)).credentials == secret


# flask seed demo

def demo_counts(db):
    db.session.expire_all()
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in (Firm.__table__, User.__table__, Membership.__table__, Group.__table__,
                      Dossier.__table__, dossier_users, dossier_groups, group_members)
    }


def test_seed_demo_is_idempotent(db, flask_cli):
    first = flask_cli("seed", "demo")
    assert first.exit_code == 0, first.output
    counts = demo_counts(db)

    second = flask_cli("seed", "demo")

    assert second.exit_code == 0, second.output
    assert demo_counts(db) == counts
    assert counts["firm"] == 1 and counts["user"] == len(LOGINS) and counts["dossier"] == 6
    assert "nothing new" in second.output
    for login in LOGINS:
        assert login.email in second.output and login.password in second.output


def test_seed_demo_gives_each_role_what_it_should_see(db, flask_cli):
    assert flask_cli("seed", "demo").exit_code == 0
    db.session.expire_all()
    firm = db.session.scalar(select(Firm).where(Firm.name == "Demo Accountancy"))
    assert (firm.country, firm.timezone) == ("BE", "Europe/Brussels")

    def visible(key):
        login = next(l for l in LOGINS if l.key == key)
        user = user_by_email(db, login.email)
        assert user.check_password(login.password)
        assert len(login.password) >= 10
        return set(db.session.scalars(visible_dossier_ids(actor_for(user, firm.id))))

    every_dossier = set(db.session.scalars(select(Dossier.id).where(Dossier.firm_id == firm.id)))
    assert visible("admin") == every_dossier
    assert 0 < len(visible("external")) <= 2
    assert 0 < len(visible("pulse")) <= 2
    assert visible("support") == every_dossier
    staff = user_by_email(db, "staff@demo.firmsync.test")
    assert staff.membership_for(firm.id).can_create_files
    support = user_by_email(db, "support@demo.firmsync.test")
    assert support.is_support and support.memberships == []
    countries = set(db.session.scalars(select(Dossier.country).where(Dossier.firm_id == firm.id)))
    assert countries == {"BE", "NL", "GB", "FR"}


def test_seed_demo_refuses_production(app, db, flask_cli):
    app.config["ENV_NAME"] = "production"

    result = flask_cli("seed", "demo")

    assert result.exit_code != 0
    assert "production" in result.output
    assert demo_counts(db)["firm"] == 0
