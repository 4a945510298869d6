"""Dashboard accounts: hashes, lockout, disabled accounts, SSO matching, the first admin,
and the role matrix."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from schoolcomms import auth, roles
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import User
from schoolcomms.settings import Settings

PASSWORD = "correct horse battery"
# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store
T = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(settings: Settings):
    return open_ops(settings)


def test_passwords_are_stored_as_argon2_hashes_only(engine, settings) -> None:
    auth.create_user(
        engine, email="Ann@School.org", roles=["teacher"], actor="t", password=PASSWORD
    )
    with session_scope(engine, immediate=False) as s:
        user = s.scalars(select(User)).one()
    assert user.email == "ann@school.org"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    signed = auth.authenticate(engine, settings, " ANN@school.org ", PASSWORD, now=T)
    assert signed.roles == ("teacher",) and signed.email == "ann@school.org"


def test_wrong_passwords_lock_the_account_then_it_unlocks(engine, settings) -> None:
    auth.create_user(engine, email="a@s.org", roles=["office"], actor="t", password=PASSWORD)
    for _ in range(4):
        with pytest.raises(auth.BadCredentials):
            auth.authenticate(engine, settings, "a@s.org", "wrong password!", now=T)
    with pytest.raises(auth.LockedOut, match="locked for 15 minutes"):
        auth.authenticate(engine, settings, "a@s.org", "wrong password!", now=T)
    with pytest.raises(auth.LockedOut, match="locked for"):
        auth.authenticate(engine, settings, "a@s.org", PASSWORD, now=T + dt.timedelta(minutes=14))
    ok = auth.authenticate(engine, settings, "a@s.org", PASSWORD, now=T + dt.timedelta(minutes=16))
    assert ok.email == "a@s.org"
    actions = recent_audit(engine, limit=20)["action"].tolist()
    assert actions.count("login.BadCredentials") == 4 and "login.LockedOut" in actions
    assert "login.ok" in actions
    assert all(PASSWORD not in str(d) for d in recent_audit(engine, limit=50)["details"])


def test_unknown_addresses_and_disabled_accounts_are_refused(engine, settings) -> None:
    with pytest.raises(auth.BadCredentials, match="do not match"):
        auth.authenticate(engine, settings, "nobody@s.org", PASSWORD, now=T)
    auth.create_user(engine, email="b@s.org", roles=["teacher"], actor="t", password=PASSWORD)
    auth.set_disabled(engine, "b@s.org", True, "admin")
    with pytest.raises(auth.AccountDisabled):
        auth.authenticate(engine, settings, "b@s.org", PASSWORD, now=T)
    assert auth.sso_user(engine, "b@s.org") is None


def test_single_sign_on_matches_by_email_and_gives_the_roles(engine) -> None:
    auth.create_user(engine, email="head@s.org", roles=["senior_leader"], actor="t")
    assert auth.sso_user(engine, "Head@S.org").roles == ("senior_leader",)
    assert auth.sso_user(engine, "stranger@s.org") is None
    with session_scope(engine, immediate=False) as s:
        assert s.scalars(select(User.password_hash)).one() is None


def test_reset_gives_a_random_password_to_change_and_unlocks(engine, settings) -> None:
    auth.create_user(engine, email="c@s.org", roles=["teacher"], actor="t", password=PASSWORD)
    new = auth.reset_password(engine, "c@s.org", "admin")
    assert len(new) >= 16
    signed = auth.authenticate(engine, settings, "c@s.org", new, now=T)
    assert signed.must_change_password
    auth.change_password(engine, signed.user_id, new, "a brand new passphrase")
    assert not auth.current(engine, signed.user_id).must_change_password
    with pytest.raises(auth.AccountProblem, match="current password is not right"):
        auth.change_password(engine, signed.user_id, "nope nope nope", "another passphrase")


def test_bad_account_requests_are_refused_in_words(engine) -> None:
    with pytest.raises(auth.AccountProblem, match="at least 10 characters"):
        auth.create_user(engine, email="d@s.org", roles=["teacher"], actor="t", password="short")
    with pytest.raises(ValueError, match="Unknown role"):
        auth.create_user(engine, email="d@s.org", roles=["headteacher"], actor="t")
    with pytest.raises(auth.AccountProblem, match="not an e-mail address"):
        auth.create_user(engine, email="dee", roles=["teacher"], actor="t")
    auth.create_user(engine, email="d@s.org", roles=["teacher"], actor="t")
    with pytest.raises(auth.AccountProblem, match="already an account"):
        auth.create_user(engine, email="D@s.org", roles=["office"], actor="t")


def test_the_first_admin_is_created_once(engine, settings) -> None:
    password = auth.ensure_first_admin(engine)
    assert password and auth.ensure_first_admin(engine) is None
    signed = auth.authenticate(engine, settings, auth.FIRST_ADMIN_EMAIL, password, now=T)
    assert signed.roles == ("admin",) and signed.must_change_password


def test_role_changes_and_disabling_take_effect_for_a_signed_in_user(engine) -> None:
    user_id = auth.create_user(engine, email="e@s.org", roles=["teacher"], actor="t")
    auth.update_user(engine, "e@s.org", "admin", roles=["teacher", "pastoral"])
    assert auth.current(engine, user_id).roles == ("pastoral", "teacher")
    auth.set_disabled(engine, "e@s.org", True, "admin")
    assert auth.current(engine, user_id) is None


def test_the_role_matrix() -> None:
    assert roles.can(["attendance_officer"], "send.bulk")
    assert not roles.can(["teacher"], "send.bulk") and roles.can(["teacher"], "send.single")
    assert not roles.can(["senior_leader"], "send.single")
    assert not roles.can(["teacher"], "medical.view")
    assert roles.can_open(["data_manager"], "data_loads")
    assert not roles.can_open(["teacher"], "data_loads")
    with pytest.raises(roles.PermissionDenied, match="data manager"):
        roles.check_page(["teacher"], "data_loads")
    with pytest.raises(KeyError):
        roles.can(["admin"], "no.such.action")
    assert all(set(r) <= set(roles.ROLES) for r in roles.PAGE_ROLES.values())
    assert all(set(r) <= set(roles.ROLES) for r in roles.ACTION_ROLES.values())
    assert all("admin" in r for r in [*roles.PAGE_ROLES.values(), *roles.ACTION_ROLES.values()])
