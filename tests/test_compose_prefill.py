"""Compose arriving from another page (the prefill) and what each role may send.

Driven with AppTest against the minimal school in a real data folder and a real SQLite
ops store; the prefill is put in session_state as the Attendance page leaves it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from conftest import sign_in
from streamlit.testing.v1 import AppTest

from dashboard import messaging
from schoolcomms import auth
from schoolcomms.ops.db import open_ops
from schoolcomms.ops.history import recent_audit
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse
from senders.bank import save_template
from senders.compose import ComposeError, Composition, plan_send
from senders.outbox import message_log

COMPOSE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "compose.py")
TIMEOUT = 60
FROM_ATTENDANCE = {
    "student_ids": ["S1", "S2"],
    "channel": "email",
    "source": "Attendance",
    "note": "absent on 20/11/2026",
    "body": "Dear {{ contact.name }}, {{ student.forename }} was absent today.",
    "subject": "Absence today",
}


@pytest.fixture
def school(loaded: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The minimal school loaded, and the app using its data folder."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(loaded.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    return loaded


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def compose(*roles: str, staff_id: str | None = None, **state: Any) -> AppTest:
    at = sign_in(AppTest.from_file(COMPOSE, default_timeout=TIMEOUT), *roles, staff_id=staff_id)
    for key, value in state.items():
        at.session_state[key] = value
    return run(at)


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_prefill_chooses_the_pupils_and_says_where_they_came_from(school: Settings) -> None:
    at = compose("attendance_officer", compose_prefill=dict(FROM_ATTENDANCE))
    assert "compose_prefill" not in at.session_state  # taken once
    assert "2 pupils from Attendance: absent on 20/11/2026" in texts(at.info)
    assert at.radio(key="compose_channel").value == "email"
    assert at.radio(key="compose_source").value == "text"
    assert at.text_area(key="compose_paste_ids").value == "S1\nS2"
    assert at.text_input(key="compose_subject").value == "Absence today"
    assert "was absent today" in at.text_area(key="compose_body").value
    assert "2 pupil(s) chosen" in texts(at.markdown)
    at.button(key="compose_preview").click()
    run(at)
    assert (metrics(at)["Messages"], metrics(at)["Left out"]) == ("1", "1")  # S2: no consent
    # The note stays while the pupils are the ones handed over, then goes.
    run(at)
    assert "2 pupils from Attendance" in texts(at.info)
    at.text_area(key="compose_paste_ids").set_value("S1")
    run(at)
    assert "from Attendance" not in texts(at.info)


def test_pupils_are_e_mailed_at_their_own_address_from_compose(school: Settings) -> None:
    """Homework hands pupils over with recipients "pupils": the preview writes to S1 at
    the pupil's own address; S2 has none in the students extract and is left out."""
    prefill = dict(FROM_ATTENDANCE, recipients="pupils", body="Hi {{ contact.forename }}")
    at = compose("pastoral", compose_prefill=prefill)
    assert at.radio(key="compose_to").value == "pupils"
    assert not at.number_input  # no contact priority when writing to pupils
    at.button(key="compose_preview").click()
    run(at)
    assert (metrics(at)["Messages"], metrics(at)["Left out"]) == ("1", "1")
    shown = "\n".join(str(t.value.to_dict("records")) for t in at.dataframe)
    assert "'contact': 'Ann Able', 'to': 'ann@pupils.example.com'" in shown
    assert "no pupil e-mail in the students extract" in shown
    # Switching to parents and carers is a different message: a new preview is needed.
    at.radio(key="compose_to").set_value("contacts")
    run(at)
    assert at.number_input(key="compose_max_priority").value == 1


def test_a_prefill_starts_a_new_message(school: Settings) -> None:
    at = compose("office")
    at.text_area(key="compose_paste_ids").set_value("S3")
    at.radio(key="compose_source").set_value("text")
    run(at)
    at.text_area(key="compose_body").set_value("Old text")
    at.button(key="compose_preview").click()
    run(at)
    assert "Messages" in metrics(at)
    at.session_state["compose_prefill"] = {"student_ids": ["S1"], "source": "Behaviour"}
    run(at)
    assert "1 pupil from Behaviour" in texts(at.info)
    assert at.text_area(key="compose_paste_ids").value == "S1"
    assert "Messages" not in metrics(at)  # the old preview is gone
    assert at.radio(key="compose_channel").value == "sms"


def test_a_prefilled_template_and_one_not_in_the_bank(school: Settings) -> None:
    save_template(
        open_ops(school),
        name="Absence follow-up",
        channel="sms",
        subject=None,
        body="{{ student.forename }} was not in school today.",
        category="attendance",
        actor="tester",
    )
    prefill = {"student_ids": ["S1"], "channel": "sms", "template": "Absence follow-up"}
    at = compose("attendance_officer", compose_prefill=prefill)
    assert at.radio(key="compose_source").value == "template"
    assert at.selectbox(key="compose_template_sms").value == "Absence follow-up"
    at.button(key="compose_preview").click()
    run(at)
    assert metrics(at)["Messages"] == "1"

    missing = dict(prefill, template="No such template")
    at = compose("attendance_officer", compose_prefill=missing)
    assert "'No such template' is not among the SMS templates" in texts(at.warning)
    assert at.selectbox(key="compose_template_sms").value == "Absence follow-up"


def test_prefill_problems_are_said_in_words() -> None:
    odd = messaging.read_prefill(
        {"student_ids": "S1, S2 S1", "channel": "fax", "recipients": "pupils", "body": " "}
    )
    assert odd.student_ids == ("S1", "S2") and odd.channel is None and odd.body is None
    assert "cannot send by 'fax'" in odd.problems[0]
    assert odd.arrival == "2 pupils from another page"
    texted = messaging.read_prefill(
        {"student_ids": ["S1"], "channel": "sms", "recipients": "pupils"}
    )
    assert not texted.to_pupils and "by e-mail only" in texted.problems[0]
    assert messaging.read_prefill(None).student_ids == ()


def test_a_teacher_messages_one_pupils_parents_at_a_time(school: Settings) -> None:
    engine = open_ops(school)
    prefill = {"student_ids": ["S1", "S2"], "channel": "sms", "body": "Hello {{ contact.name }}"}
    at = compose("teacher", staff_id="T1", compose_prefill=prefill)
    assert "may message one pupil's parents at a time" in texts(at.caption)
    assert "2 pupils are chosen, but your account may message one pupil's" in texts(at.error)
    assert at.button(key="compose_preview").disabled
    at.text_area(key="compose_paste_ids").set_value("S1")
    run(at)
    assert not at.error and not at.button(key="compose_preview").disabled
    at.button(key="compose_preview").click()
    run(at)
    at.button(key="compose_send").click()
    run(at)
    log = message_log(engine)
    assert log["to_address"].tolist() == ["+447400200001"]
    assert log["created_by"].tolist() == ["teacher@school.example.org"]
    assert len(recent_audit(engine, action="send")) == 1


def test_sending_to_several_pupils_is_checked_again_when_send_is_pressed(
    school: Settings,
) -> None:
    engine = open_ops(school)
    at = compose("teacher", "office")
    at.text_area(key="compose_paste_ids").set_value("S1 S2")
    at.radio(key="compose_source").set_value("text")
    run(at)
    at.text_area(key="compose_body").set_value("Hello {{ contact.name }}")
    at.button(key="compose_preview").click()
    run(at)
    assert metrics(at)["Messages"] == "2"
    # The office role is taken away while the preview is on screen.
    auth.update_user(engine, "teacher-office@school.example.org", "admin", roles=["teacher"])
    at.button(key="compose_send").click()
    run(at)
    assert "may not do this (send.bulk)" in texts(at.error)
    assert message_log(engine).empty


def test_a_senior_leader_cannot_open_compose(school: Settings) -> None:
    at = compose("senior_leader", compose_prefill=dict(FROM_ATTENDANCE))
    assert "cannot open this page" in texts(at.error)
    assert not at.text_area


def test_over_budget_needs_a_role_that_may_confirm(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHOOLCOMMS_SMS_BATCH_BUDGET_PENCE", "5")
    prefill = {"student_ids": ["S1", "S2"], "channel": "sms", "body": "Hello {{ contact.name }}"}
    at = compose("pastoral", compose_prefill=prefill)
    at.button(key="compose_preview").click()
    run(at)
    assert "more than the £0.05" in texts(at.warning)
    box = at.checkbox(key="compose_confirm_budget")
    assert box.disabled and "admin or attendance officer" in box.help
    assert messaging.may_confirm_over_budget(["attendance_officer"])
    assert not messaging.may_confirm_over_budget(["senior_leader", "pastoral"])
    assert not messaging.may_confirm_over_budget([])
    assert messaging.send_action(1) == "send.single" and messaging.send_action(2) == "send.bulk"
    assert messaging.may_send_bulk(["office"]) and not messaging.may_send_bulk(["teacher"])

    engine = open_ops(school)
    composition = Composition("sms", ["S1", "S2"], created_by="t", body="Hi {{ contact.name }}")
    plan = plan_send(school, Warehouse.from_settings(school), engine, composition)
    plan.budget_pence = 5  # these settings do not read the environment
    assert plan.over_budget
    with pytest.raises(ComposeError, match="only an admin or attendance officer"):
        messaging.send(
            engine, school, plan, actor="t", over_budget_confirmed=True, user_roles=["pastoral"]
        )
    with pytest.raises(ComposeError, match="only an admin or attendance officer"):
        messaging.send(engine, school, plan, actor="t", over_budget_confirmed=True)
    assert message_log(engine).empty
    done = messaging.send(
        engine, school, plan, actor="t", over_budget_confirmed=True, user_roles=["admin"]
    )
    assert done.queued and len(message_log(engine)) == 2
