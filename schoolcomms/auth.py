"""Dashboard accounts: argon2 password hashes, lockout, single sign-on matching, the first admin.

Local accounts keep an argon2id hash in the ops store (never the password). After
``login_max_failures`` wrong passwords in a row an account is locked for
``login_lockout_minutes``; every sign-in, failure, lockout and account change is in
the audit log. Single sign-on accounts (Microsoft 365 or Google Workspace through
``st.login``) are matched by e-mail address to a user row, which gives the roles; an
address with no row gets no access. The first run creates an ``admin`` with a random
password printed once (:func:`ensure_first_admin`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.history import audit
from schoolcomms.ops.models import AuditEntry, User, utcnow
from schoolcomms.roles import validate_roles
from schoolcomms.settings import Settings

HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
FIRST_ADMIN_EMAIL = "admin@localhost"


class AuthError(Exception):
    """Sign-in refused; the message is safe to show (it never says which part was wrong)."""


class BadCredentials(AuthError):
    """Unknown e-mail address or wrong password."""


class LockedOut(AuthError):
    """Too many wrong passwords: the account is locked for a while."""


class AccountDisabled(AuthError):
    """The account was disabled by an administrator."""


class AccountProblem(ValueError):
    """An account change cannot be made as asked; the message says why and what to do."""


@dataclass(frozen=True)
class SignedIn:
    """Who signed in: what the dashboard keeps in the session."""

    user_id: int
    email: str
    name: str
    roles: tuple[str, ...]
    staff_id: str | None
    must_change_password: bool = False


def _signed_in(user: User) -> SignedIn:
    return SignedIn(
        user.id,
        user.email,
        user.name or user.email,
        tuple(user.roles or ()),
        user.staff_id,
        user.must_change_password,
    )


def normalise_email(email: str) -> str:
    """The address trimmed and lower-cased; refused if it is not an address at all."""
    value = (email or "").strip().lower()
    if "@" not in value or value.startswith("@") or value.endswith("@") or " " in value:
        raise AccountProblem(f"{email!r} is not an e-mail address; write it as name@school.org.")
    return value


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``, refused when it is too short."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountProblem(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters; a few words "
            "together make a good one."
        )
    return HASHER.hash(password)


def random_password() -> str:
    """A random password of about 100 bits, easy to type (letters and digits)."""
    return secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


def create_user(
    engine: Engine,
    *,
    email: str,
    roles: list[str],
    actor: str,
    name: str = "",
    staff_id: str | None = None,
    password: str | None = None,
    must_change_password: bool = False,
) -> int:
    """Add an account (local with ``password``, else single sign-on only); return its id."""
    address = normalise_email(email)
    checked = validate_roles(roles)
    hashed = hash_password(password) if password is not None else None
    with session_scope(engine) as session:
        if session.scalar(select(User.id).where(User.email == address)) is not None:
            raise AccountProblem(
                f"There is already an account for {address}; use `schoolcomms users reset` "
                "or change it on the Users page."
            )
        user = User(
            email=address,
            name=name.strip(),
            roles=checked,
            staff_id=(staff_id or "").strip() or None,
            password_hash=hashed,
            must_change_password=must_change_password,
            password_changed_at=utcnow() if hashed else None,
            created_by=actor,
        )
        session.add(user)
        session.flush()
        user_id = user.id
    audit(
        engine,
        actor,
        "user.create",
        f"user:{address}",
        {"roles": checked, "staff_id": staff_id, "local": hashed is not None},
    )
    return user_id


def _user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise AccountProblem(
            f"There is no account for {email}; add it with `schoolcomms users add`."
        )
    return user


def reset_password(engine: Engine, email: str, actor: str, password: str | None = None) -> str:
    """Set a new password (random when not given), unlock the account; return the password.

    The user must change a random password at the next sign-in.
    """
    new = password if password is not None else random_password()
    hashed = hash_password(new)
    with session_scope(engine) as session:
        user = _user(session, email)
        user.password_hash = hashed
        user.failed_logins = 0
        user.locked_until = None
        user.must_change_password = password is None
        user.password_changed_at = utcnow()
        address = user.email
    audit(engine, actor, "user.reset_password", f"user:{address}", {"random": password is None})
    return new


def change_password(engine: Engine, user_id: int, old: str, new: str) -> None:
    """The user's own change of password: the old one must be right."""
    hashed = hash_password(new)
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None or user.password_hash is None or not _verify(user.password_hash, old):
            raise AccountProblem("The current password is not right; nothing was changed.")
        if old == new:
            raise AccountProblem("Choose a new password different from the current one.")
        user.password_hash = hashed
        user.must_change_password = False
        user.password_changed_at = utcnow()
        address = user.email
    audit(engine, address, "user.change_password", f"user:{address}")


def set_disabled(engine: Engine, email: str, disabled: bool, actor: str) -> None:
    """Disable (or enable again) an account; a disabled account cannot sign in."""
    with session_scope(engine) as session:
        user = _user(session, email)
        user.disabled = disabled
        address = user.email
    audit(engine, actor, "user.disable" if disabled else "user.enable", f"user:{address}")


def update_user(
    engine: Engine,
    email: str,
    actor: str,
    *,
    roles: list[str] | None = None,
    name: str | None = None,
    staff_id: str | None = None,
) -> None:
    """Change an account's roles, name or staff link (audited with the old and new roles)."""
    checked = validate_roles(roles) if roles is not None else None
    with session_scope(engine) as session:
        user = _user(session, email)
        before = list(user.roles or [])
        if checked is not None:
            user.roles = checked
        if name is not None:
            user.name = name.strip()
        if staff_id is not None:
            user.staff_id = staff_id.strip() or None
        address = user.email
    audit(
        engine,
        actor,
        "user.update",
        f"user:{address}",
        {"roles_before": before, "roles": checked, "name": name, "staff_id": staff_id},
    )


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(
    engine: Engine, settings: Settings, email: str, password: str, now: dt.datetime | None = None
) -> SignedIn:
    """Check a local sign-in; raise an :class:`AuthError` (all failures are audited)."""
    now = now or utcnow()
    max_failures = max(1, int(settings["login_max_failures"]))
    lockout = dt.timedelta(minutes=max(1, int(settings["login_lockout_minutes"])))
    address = (email or "").strip().lower()
    outcome: AuthError | None = None
    # Read, then check the password with no lock held: argon2 is deliberately slow, and
    # fifty people signing in at 08:30 must not queue on the ops store's write lock.
    with session_scope(engine, immediate=False) as session:
        user = session.scalar(select(User).where(User.email == address))
        user_id = None if user is None else user.id
        hashed = None if user is None else user.password_hash
        disabled = bool(user is not None and user.disabled)
        locked_until = None if user is None else user.locked_until
    password_ok = False
    if user_id is None or hashed is None:
        HASHER.hash("timing-equaliser")  # do not reveal which addresses exist
        outcome = BadCredentials("That e-mail address and password do not match an account.")
    elif disabled:
        outcome = AccountDisabled("This account is disabled; ask an administrator.")
    elif locked_until is not None and locked_until > now:
        minutes = int((locked_until - now).total_seconds() // 60) + 1
        outcome = LockedOut(
            f"Too many wrong passwords: the account is locked for {minutes} more minute(s). "
            "Try again later or ask an administrator to reset it."
        )
    else:
        password_ok = _verify(hashed, password)
        new_hash = (
            HASHER.hash(password) if password_ok and HASHER.check_needs_rehash(hashed) else None
        )
    if user_id is not None and hashed is not None and outcome is None:
        with session_scope(engine) as session:
            user = session.get(User, user_id)
            assert user is not None
            if password_ok:
                user.failed_logins = 0
                user.locked_until = None
                user.last_login_at = now
                if new_hash:
                    user.password_hash = new_hash
                signed_in = _signed_in(user)
            else:
                user.failed_logins += 1
                if user.failed_logins >= max_failures:
                    user.locked_until = now + lockout
                    user.failed_logins = 0
                    outcome = LockedOut(
                        f"Too many wrong passwords: the account is locked for "
                        f"{int(lockout.total_seconds() // 60)} minutes."
                    )
                else:
                    outcome = BadCredentials(
                        "That e-mail address and password do not match an account."
                    )
    if outcome is not None:
        audit(engine, address or "unknown", f"login.{type(outcome).__name__}", f"user:{address}")
        raise outcome
    audit(engine, signed_in.email, "login.ok", f"user:{signed_in.email}")
    return signed_in


def sso_user(engine: Engine, email: str | None) -> SignedIn | None:
    """The account matching a single sign-on e-mail address (None: no access)."""
    if not email:
        return None
    address = email.strip().lower()
    with session_scope(engine, immediate=False) as session:
        user = session.scalar(select(User).where(User.email == address))
        return None if user is None or user.disabled else _signed_in(user)


def current(engine: Engine, user_id: int) -> SignedIn | None:
    """The account as it is now (roles changed or disabled since sign-in take effect)."""
    with session_scope(engine, immediate=False) as session:
        user = session.get(User, user_id)
        return None if user is None or user.disabled else _signed_in(user)


def list_users(engine: Engine) -> list[dict[str, object]]:
    """Every account (no hashes): email, name, roles, staff_id, state, last sign-in."""
    with session_scope(engine, immediate=False) as session:
        return [
            {
                "email": u.email,
                "name": u.name,
                "roles": ", ".join(u.roles or []),
                "staff_id": u.staff_id or "",
                "sign_in": "password" if u.password_hash else "single sign-on",
                "disabled": u.disabled,
                "locked_until": u.locked_until,
                "last_login_at": u.last_login_at,
            }
            for u in session.scalars(select(User).order_by(User.email))
        ]


def ensure_first_admin(engine: Engine, actor: str = "setup") -> str | None:
    """On a store with no accounts, create ``admin@localhost`` (role admin) and return its
    random password (to print once); otherwise None."""
    with session_scope(engine, immediate=False) as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
    password = random_password()
    try:
        create_user(
            engine,
            email=FIRST_ADMIN_EMAIL,
            roles=["admin"],
            actor=actor,
            name="Administrator",
            password=password,
            must_change_password=True,
        )
    except AccountProblem:
        return None  # another process created it first
    return password


def audit_count(engine: Engine, action: str) -> int:
    """How many audit rows of ``action`` there are (for tests and the audit page)."""
    with session_scope(engine, immediate=False) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            )
            or 0
        )
