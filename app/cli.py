"""Command-line interface: ``flask users create``, ``flask crypto rotate-keys``, ``flask seed demo``."""
import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.extensions import db
from app.models import Firm, Membership, Role, User

users_cli = AppGroup("users", help="Manage users and memberships.")
crypto_cli = AppGroup("crypto", help="Encryption keys of secrets at rest.")
seed_cli = AppGroup("seed", help="Sample data for trying Firmsync out.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
@click.option("--firm", "firm_name", help="Firm name; created when it does not exist yet.")
@click.option("--role", type=click.Choice(Role.ALL), default=Role.ADMIN, show_default=True)
@click.option("--can-create-files", is_flag=True, help="Staff contributors only: may create dossiers.")
@click.option("--no-multi-file-access", is_flag=True, help="Staff: see only dossiers granted explicitly.")
@click.option("--support", is_flag=True, help="Platform support staff (read-only on every firm).")
def create_user(email, password, name, firm_name, role, can_create_files, no_multi_file_access, support):
    """Create a user (or add a membership to an existing one)."""
    email = email.strip().lower()
    if len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    if user is None:
        user = User(email=email, name=name or email.split("@")[0])
        db.session.add(user)
    user.set_password(password)
    user.is_support = user.is_support or support
    if firm_name:
        firm = db.session.scalar(select(Firm).where(Firm.name == firm_name))
        if firm is None:
            firm = Firm(name=firm_name)
            db.session.add(firm)
            db.session.flush()
        membership = user.membership_for(firm.id) if user.id else None
        if membership is None:
            membership = Membership(user=user, firm=firm)
            db.session.add(membership)
        membership.role = role
        membership.can_create_files = can_create_files or role == Role.ADMIN
        membership.multi_file_access = not no_multi_file_access
    elif not support:
        raise click.UsageError("give --firm, or --support for platform support staff")
    db.session.commit()
    click.echo(f"user {email} ready" + (f" in firm {firm_name} as {role}" if firm_name else " (support)"))


@crypto_cli.command("rotate-keys")
def rotate_keys():
    """Re-encrypt every stored secret with the first key of FIRMSYNC_ENCRYPTION_KEYS."""
    from app.crypto import rotate_all

    count = rotate_all(db)
    click.echo(f"re-encrypted {count} value(s) with the current key")


@seed_cli.command("demo")
@click.option("--force", is_flag=True, help="Seed even in production (demo passwords are public).")
def seed_demo_command(force):
    """Create the demo firm, its users and dossiers (safe to run again), then print the logins."""
    from flask import current_app

    from app.demo_seed import login_table, sandbox_summary, seed_demo

    if current_app.config.get("ENV_NAME") == "production" and not force:
        raise click.UsageError("the demo logins have public passwords: not seeded in production (use --force)")
    result = seed_demo(db)
    created = ", ".join(f"{count} {kind}" for kind, count in result["created"].items() if count) or "nothing new"
    click.echo(f"Demo firm \"{result['firm'].name}\" is ready ({created} created).")
    click.echo(sandbox_summary(result["sandbox"]))
    click.echo(login_table(result["logins"]))


def init_app(app):
    app.cli.add_command(users_cli)
    app.cli.add_command(crypto_cli)
    app.cli.add_command(seed_cli)
    # ``flask worker`` and ``flask sync ...`` come from the jobs package through the
    # ``flask.commands`` entry points in pyproject.toml: the factory does not import the jobs
