"""Notices sent by staff: senders.staff_notices and the "Send a notice" page (AppTest).

Real parts throughout: the minimal school in a real warehouse, a real SQLite ops store
with accounts, staff groups, notices, queued e-mails and audit rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import streamlit as st
from conftest import sign_in
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from schoolcomms import auth
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Message, Notice
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse
from senders.alerts.rules import create_group
from senders.notices import notices_for
from senders.staff_notices import (
    NoticeProblem,
    notices_sent_by,
    preview_notice,
    send_notice,
)

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "notices.py")
TIMEOUT = 60


def notices(settings: Settings) -> list[Notice]:
    with session_scope(open_ops(settings), immediate=False) as session:
        return list(session.scalars(select(Notice).order_by(Notice.key)))


def emails(settings: Settings) -> list[Message]:
    with session_scope(open_ops(settings), immediate=False) as session:
        return list(session.scalars(select(Message).order_by(Message.to_address)))


def send(settings: Settings, **kw: object) -> int:
    fields: dict = {
        "title": "Briefing moved",
        "body": "Staff briefing is at 8:15 tomorrow.",
        "staff_ids": [],
        "groups": [],
        "audiences": [],
        "popup": False,
        "email": False,
        "actor": "head@school.example.org",
    }
    fields.update(kw)
    engine = open_ops(settings)
    return send_notice(engine, settings, Warehouse.from_settings(settings), **fields)


def test_a_notice_to_staff_groups_and_roles_is_stored_once_per_recipient(
    loaded: Settings,
) -> None:
    engine = open_ops(loaded)
    create_group(engine, name="Maths team", staff_ids=["T1", "T2"], actor="test")
    auth.create_user(engine, email="dm@school.example.org", roles=["data_manager"], actor="t")
    count = send(
        loaded,
        staff_ids=["T1"],
        groups=["Maths team"],
        audiences=["data_manager"],
        popup=True,
        email=True,
        send_id="abc",
    )
    assert count == 3  # T1 once (chosen and in the group), T2, the data managers
    stored = notices(loaded)
    assert [(n.key, n.staff_id, n.audience) for n in stored] == [
        ("staff_notice:abc:role:data_manager", None, "data_manager"),
        ("staff_notice:abc:staff:T1", "T1", None),
        ("staff_notice:abc:staff:T2", "T2", None),
    ]
    assert all(n.urgent and n.source == "staff_notice" for n in stored)
    assert all(n.created_by == "head@school.example.org" and n.message_id for n in stored)
    assert [(m.to_address, m.subject) for m in emails(loaded)] == [
        ("dm@school.example.org", "[Urgent] Briefing moved"),
        ("t.teach@school.example.com", "[Urgent] Briefing moved"),
        ("t.tutor@school.example.com", "[Urgent] Briefing moved"),
    ]
    audit = recent_audit(engine, action="notice.send")
    assert len(audit) == 1 and audit.iloc[0]["actor"] == "head@school.example.org"
    assert audit.iloc[0]["details"]["emails"] == 3

    # The same send again (a double click): nothing new, no second audit row.
    assert send(loaded, staff_ids=["T1"], groups=["Maths team"], send_id="abc") == 0
    assert len(notices(loaded)) == 3 and len(emails(loaded)) == 3
    assert len(recent_audit(engine, action="notice.send")) == 1
    # A role's notice reaches every account holding the role, via its audience.
    assert [n["title"] for n in notices_for(engine, audiences=["data_manager"])] == [
        "Briefing moved"
    ]


def test_email_follows_the_senders_choice_not_the_alert_setting(
    loaded: Settings, tmp_path: Path
) -> None:
    quiet = Settings(loaded.data_dir, env={"SCHOOLCOMMS_ALERT_EMAILS": "false"})
    assert quiet["alert_emails"] is False
    assert send(quiet, staff_ids=["T1"], email=True, send_id="one") == 1
    assert [m.to_address for m in emails(quiet)] == ["t.teach@school.example.com"]
    assert send(quiet, staff_ids=["T2"], email=False, send_id="two") == 1
    assert len(emails(quiet)) == 1
    stored = {n.staff_id: n for n in notices(quiet)}
    assert stored["T2"].urgent is False and stored["T2"].message_id is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"staff_ids": ["T1"], "title": " "}, "Give the notice a title"),
        ({"staff_ids": ["T1"], "body": ""}, "Write the notice itself"),
        ({}, "Choose who gets the notice"),
        ({"staff_ids": ["T9"]}, "T9 are not in the staff extract"),
        ({"groups": ["Nobody"]}, "no staff group called Nobody"),
    ],
)
def test_notices_that_cannot_be_sent_say_why(loaded: Settings, fields: dict, problem: str) -> None:
    with pytest.raises(NoticeProblem, match=problem):
        send(loaded, **fields)
    assert notices(loaded) == []


def test_preview_matches_the_send_and_lists_staff_without_email(loaded: Settings) -> None:
    engine = open_ops(loaded)
    create_group(engine, name="Ghosts", staff_ids=["T2", "X9"], actor="test")
    plan = preview_notice(
        engine,
        loaded,
        Warehouse.from_settings(loaded),
        title="Fire drill",
        body="At 10:00.",
        staff_ids=[],
        groups=["Ghosts"],
        audiences=["teacher"],
        popup=False,
        email=True,
        send_id="p",
    )
    assert [n.key for n in plan.notices] == [
        "staff_notice:p:staff:T2",
        "staff_notice:p:staff:X9",
        "staff_notice:p:role:teacher",
    ]
    assert plan.emails == (("t.tutor@school.example.com",), (), ())
    assert plan.without_email == ("X9",) and plan.email_count == 1
    assert notices(loaded) == []  # a preview writes nothing


def test_notices_sent_by_lists_each_send_with_reads(loaded: Settings) -> None:
    engine = open_ops(loaded)
    send(loaded, staff_ids=["T1", "T2"], email=True, send_id="first", title="First")
    send(loaded, audiences=["office"], send_id="second", title="Second", popup=True)
    send(loaded, staff_ids=["T1"], send_id="other", actor="someone@else.org")
    first = [n["id"] for n in notices_for(engine, staff_id="T1") if n["title"] == "First"]
    with session_scope(engine) as session:
        session.get(Notice, first[0]).read_at = session.get(Notice, first[0]).created_at
    sent = notices_sent_by(engine, "head@school.example.org", names={"T1": "Ms Tara Teach"})
    assert sent["title"].tolist() == ["Second", "First"]  # newest first; not the other's
    rows = {r["title"]: r for r in sent.to_dict("records")}
    assert rows["First"]["recipients"] == "Ms Tara Teach, T2"
    assert (rows["First"]["notices"], rows["First"]["read"], rows["First"]["emails"]) == (2, 1, 2)
    assert rows["Second"]["shown_as"] == "Pop-up" and rows["Second"]["recipients"] == (
        "Office staff"
    )
    assert rows["Second"]["emails"] == 0


# ------------------------------------------------------------------------------ the page


@pytest.fixture
def school(loaded: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app pointed at the loaded minimal school; nothing of the developer's set-up."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(loaded.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    return loaded


def run(at: AppTest | None = None, *roles: str) -> AppTest:
    at = at or sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT), *roles)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def test_a_data_manager_sends_a_pop_up_to_a_group_and_a_person(school: Settings) -> None:
    create_group(open_ops(school), name="Tutors", staff_ids=["T2"], actor="test")
    at = run(None, "data_manager")
    assert at.title[0].value == "Send a notice"
    assert at.button(key="notice_send").disabled
    assert "Choose who gets the notice" in texts(at.info)
    assert "Ms Tara Teach (T1)" in at.multiselect(key="notice_staff").options
    at.text_input(key="notice_title").set_value("Inset day")
    at.text_area(key="notice_body").set_value("No pupils on Friday.")
    at.multiselect(key="notice_staff").set_value(["T1"])
    at.multiselect(key="notice_groups").set_value(["Tutors"])
    at.radio(key="notice_show").set_value("popup")
    at.checkbox(key="notice_email").check()
    run(at)
    assert not at.button(key="notice_send").disabled
    assert "Who gets it: 2 notice(s), 2 e-mail(s)" in [e.label for e in at.expander]
    at.button(key="notice_send").click()
    run(at)
    assert "Notice sent: 2 notice(s)." in texts(at.success)
    assert at.text_input(key="notice_title").value == ""  # the form is emptied
    stored = notices(school)
    assert [(n.staff_id, n.urgent, n.title) for n in stored] == [
        ("T1", True, "Inset day"),
        ("T2", True, "Inset day"),
    ]
    assert all(n.created_by == "data_manager@school.example.org" for n in stored)
    assert len(emails(school)) == 2
    assert len(recent_audit(open_ops(school), action="notice.send")) == 1
    sent = [d.value for d in at.dataframe if "shown_as" in d.value.columns][0]
    assert sent["title"].tolist() == ["Inset day"] and sent["shown_as"].tolist() == ["Pop-up"]
    assert sent["recipients"].tolist() == ["Ms Tara Teach (T1), Mr Tom Tutor (T2)"]


def test_a_role_notice_from_the_page(school: Settings) -> None:
    at = run(None, "office")
    at.text_input(key="notice_title").set_value("Cake")
    at.text_area(key="notice_body").set_value("In the staff room.")
    at.multiselect(key="notice_roles").set_value(["teacher", "pastoral"])
    run(at)
    at.button(key="notice_send").click()
    run(at)
    assert [(n.audience, n.urgent) for n in notices(school)] == [
        ("pastoral", False),
        ("teacher", False),
    ]
    assert emails(school) == []


def test_teachers_and_attendance_officers_cannot_open_the_page(school: Settings) -> None:
    for role in ("teacher", "attendance_officer"):
        at = run(None, role)
        assert "cannot open this page" in texts(at.error)
        assert not at.button and not at.text_input
    assert notices(school) == []
