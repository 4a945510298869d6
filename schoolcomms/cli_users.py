"""The ``users`` commands: dashboard accounts (a thin wrapper over schoolcomms.auth)."""

from __future__ import annotations

import json

import click

from schoolcomms.cli import Refused, _settings, main


def _engine(ctx: click.Context):  # type: ignore[no-untyped-def]
    from schoolcomms.ops.db import open_ops

    return open_ops(_settings(ctx))


@main.group("users")
def users() -> None:
    """Dashboard accounts: list, add, reset a password, disable, enable.

    Roles: admin, senior_leader, attendance_officer, data_manager, pastoral, teacher,
    office (docs/roles.md says what each may do).

    \b
    Example:
      schoolcomms users add j.smith@school.org --role attendance_officer --staff-id T042
    """


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the accounts (never their passwords).

    \b
    Example:
      schoolcomms users list --json
    """
    from schoolcomms.auth import list_users

    rows = list_users(_engine(ctx))
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    for row in rows:
        state = "disabled" if row["disabled"] else row["sign_in"]
        click.echo(f"{row['email']:40} {row['roles']:40} {row['staff_id']:10} {state}")


@users.command("add")
@click.argument("email")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeat for more).")
@click.option("--name", default="", help="The person's name.")
@click.option("--staff-id", default=None, help="Their staff_id in the staff extract.")
@click.option(
    "--sso", is_flag=True, help="Single sign-on only (Microsoft 365 / Google): no password."
)
@click.pass_context
def add_command(
    ctx: click.Context,
    email: str,
    roles: tuple[str, ...],
    name: str,
    staff_id: str | None,
    sso: bool,
) -> None:
    """Add an account; prints its first password once (to be changed at first sign-in).

    \b
    Example:
      schoolcomms users add head@school.org --role senior_leader --name "Mrs Head"
    """
    from schoolcomms.auth import AccountProblem, create_user, random_password

    password = None if sso else random_password()
    try:
        create_user(
            _engine(ctx),
            email=email,
            roles=list(roles),
            actor="cli",
            name=name,
            staff_id=staff_id,
            password=password,
            must_change_password=password is not None,
        )
    except (AccountProblem, ValueError) as exc:
        raise Refused(str(exc)) from exc
    click.echo(f"Added {email.strip().lower()} ({', '.join(roles)}).")
    if password:
        click.echo(f"First password (shown once, changed at first sign-in): {password}")


@users.command("reset")
@click.argument("email")
@click.pass_context
def reset_command(ctx: click.Context, email: str) -> None:
    """Give an account a new random password (shown once) and unlock it.

    \b
    Example:
      schoolcomms users reset admin@localhost
    """
    from schoolcomms.auth import AccountProblem, reset_password

    try:
        password = reset_password(_engine(ctx), email, "cli")
    except AccountProblem as exc:
        raise Refused(str(exc)) from exc
    click.echo(f"New password for {email} (shown once, changed at next sign-in): {password}")


@users.command("disable")
@click.argument("email")
@click.pass_context
def disable_command(ctx: click.Context, email: str) -> None:
    """Disable an account: it can no longer sign in (its history stays).

    \b
    Example:
      schoolcomms users disable leaver@school.org
    """
    from schoolcomms.auth import AccountProblem, set_disabled

    try:
        set_disabled(_engine(ctx), email, True, "cli")
    except AccountProblem as exc:
        raise Refused(str(exc)) from exc
    click.echo(f"Disabled {email}.")


@users.command("enable")
@click.argument("email")
@click.pass_context
def enable_command(ctx: click.Context, email: str) -> None:
    """Enable a disabled account again.

    \b
    Example:
      schoolcomms users enable returner@school.org
    """
    from schoolcomms.auth import AccountProblem, set_disabled

    try:
        set_disabled(_engine(ctx), email, False, "cli")
    except AccountProblem as exc:
        raise Refused(str(exc)) from exc
    click.echo(f"Enabled {email}.")
