"""Referrals: the referral list, referring an incident once per option, actioning referrals.

Real parts: the minimal school plus behaviour incidents in a real DuckDB warehouse, and
a real ops store, SQLite and PostgreSQL (notices, their e-mails in the outbox, the audit log).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import minimal_school, write_extracts
from sqlalchemy import select

from pipelines.load import load_paths
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Message, Notice, Referral
from schoolcomms.roles import PermissionDenied
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders import referrals
from senders.referrals import ReferralProblem

# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store

INCIDENTS = [
    {
        "incident_id": "I1",
        "student_id": "S1",
        "occurred_at": "2026-11-19 10:15",
        "type": "Disruption",
        "polarity": "negative",
        "points": "-1",
        "location": "Classroom",
        "outcome": "Detention",
        "recorded_by": "T1",
        "comment": "Talking over the teacher.",
    },
    {
        "incident_id": "I2",
        "student_id": "S2",
        "occurred_at": "2026-11-19 11:00",
        "type": "Praise",
        "polarity": "positive",
        "points": "1",
        "location": "",
        "outcome": "",
        "recorded_by": "T2",
        "comment": "",
    },
]


@pytest.fixture
def school(settings: Settings, tmp_path: Path) -> Settings:
    tables = minimal_school()
    tables["behaviour"] = INCIDENTS
    report = load_paths(write_extracts(tmp_path / "school", tables), settings)
    assert report.ok, [p.as_text() for p in report.problems]
    return settings


@pytest.fixture
def engine(school: Settings):
    return open_ops(school)


@pytest.fixture
def warehouse(school: Settings) -> Warehouse:
    return Warehouse.from_settings(school)


def rows(engine, model) -> list:
    with session_scope(engine, immediate=False) as session:
        return list(session.scalars(select(model).order_by(model.id)))


def audits(engine, action: str) -> list[dict]:
    return recent_audit(engine, action=action).to_dict("records")


# ---- the referral list --------------------------------------------------------------------


def test_options_are_added_listed_renamed_and_switched_off_with_audit(engine, warehouse) -> None:
    first = referrals.add_option(
        engine, label="Head of Year 10", staff_id="T2", actor="admin@x", warehouse=warehouse
    )
    second = referrals.add_option(engine, label="Behaviour lead", staff_id="T1", actor="admin@x")
    assert [o["label"] for o in referrals.list_options(engine)] == [
        "Behaviour lead",
        "Head of Year 10",
    ]
    assert referrals.set_option_enabled(engine, first, False, "admin@x") is True
    assert referrals.set_option_enabled(engine, first, False, "admin@x") is False
    assert [o["id"] for o in referrals.list_options(engine, enabled_only=True)] == [second]
    assert referrals.update_option(engine, second, actor="admin@x", label="Pastoral lead") == [
        "label"
    ]
    assert referrals.update_option(engine, second, actor="admin@x", label="Pastoral lead") == []
    options = {o["id"]: o for o in referrals.list_options(engine)}
    assert options[second]["label"] == "Pastoral lead"
    assert options[first]["enabled"] is False and options[first]["updated_by"] == "admin@x"
    assert [a["target"] for a in audits(engine, "referral_option.add")] == [
        f"referral_option:{second}",
        f"referral_option:{first}",
    ]
    assert audits(engine, "referral_option.add")[1]["details"] == {
        "label": "Head of Year 10",
        "staff_id": "T2",
    }
    assert len(audits(engine, "referral_option.disable")) == 1
    update = audits(engine, "referral_option.update")[0]["details"]
    assert update == {"changes": {"label": {"old": "Behaviour lead", "new": "Pastoral lead"}}}


@pytest.mark.parametrize(
    ("label", "staff_id", "message"),
    [
        ("", "T1", "Give the label"),
        ("head of year 10", "T1", "already has 'head of year 10'"),
        ("Someone", "", "Give the member of staff"),
        ("Someone", "NOBODY", "no member of staff 'NOBODY' in the staff extract"),
        ("x" * 300, "T1", "too long"),
    ],
)
def test_bad_options_are_refused_in_words(engine, warehouse, label, staff_id, message) -> None:
    referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="admin@x")
    with pytest.raises(ReferralProblem, match=message):
        referrals.add_option(
            engine, label=label, staff_id=staff_id, actor="admin@x", warehouse=warehouse
        )
    assert len(referrals.list_options(engine)) == 1
    [option] = referrals.list_options(engine)
    with pytest.raises(ReferralProblem, match="no member of staff 'GONE'"):
        referrals.update_option(
            engine, option["id"], actor="admin@x", staff_id="GONE", warehouse=warehouse
        )
    with pytest.raises(ReferralProblem, match="Give the member of staff"):
        referrals.update_option(engine, option["id"], actor="admin@x", staff_id=" ")
    with pytest.raises(ReferralProblem, match="no referral option 99"):
        referrals.set_option_enabled(engine, 99, False, "admin@x")


# ---- referring ----------------------------------------------------------------------------


def test_a_referral_stores_a_row_a_notice_an_email_and_an_audit_row(
    engine, school, warehouse
) -> None:
    option = referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="a@x")
    done = referrals.refer(
        engine,
        school,
        warehouse,
        student_id="S1",
        incident_id="I1",
        option_id=option,
        reason="Third time this week.",
        actor="teacher@x",
    )
    assert done.created and done.to_staff_id == "T2" and done.to_name == "Mr Tom Tutor"
    assert done.emailed_to == "t.tutor@school.example.com"
    [referral] = rows(engine, Referral)
    assert (referral.id, referral.student_id, referral.incident_id) == (
        done.referral_id,
        "S1",
        "I1",
    )
    assert (referral.to_staff_id, referral.status, referral.created_by) == (
        "T2",
        "open",
        "teacher@x",
    )
    assert referral.reason == "Third time this week."
    [notice] = rows(engine, Notice)
    assert (notice.key, notice.staff_id, notice.source) == (
        f"referral:I1:{option}",
        "T2",
        "referral",
    )
    assert notice.title == "Referral: Ann Able, 10A"
    assert "teacher@x referred Ann Able (S1, 10A) to you as Head of Year 10." in notice.body
    assert "Incident I1 on 19/11/2026 10:15: Disruption (negative); outcome: Detention." in (
        notice.body
    )
    assert "Reason: Third time this week." in notice.body
    assert notice.details["referral_id"] == referral.id
    [email] = rows(engine, Message)
    assert (email.channel, email.to_address, email.id) == (
        "email",
        "t.tutor@school.example.com",
        notice.message_id,
    )
    [entry] = audits(engine, "referral.create")
    assert entry["actor"] == "teacher@x" and entry["target"] == f"referral:{referral.id}"
    assert entry["details"]["label"] == "Head of Year 10"


def test_an_incident_goes_to_an_option_once_and_to_another_option_again(
    engine, school, warehouse
) -> None:
    year = referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="a@x")
    lead = referrals.add_option(engine, label="Behaviour lead", staff_id="T1", actor="a@x")

    def refer(option: int, actor: str = "t@x"):
        return referrals.refer(
            engine,
            school,
            warehouse,
            student_id="S1",
            incident_id="I1",
            option_id=option,
            reason="",
            actor=actor,
        )

    first = refer(year)
    again = refer(year, "someone.else@x")
    assert again.referral_id == first.referral_id and not again.created
    other = refer(lead)
    assert other.created and other.to_staff_id == "T1"
    assert len(rows(engine, Referral)) == 2 and len(rows(engine, Notice)) == 2
    assert len(audits(engine, "referral.create")) == 2


def test_two_people_referring_at_once_make_one_referral(engine, school) -> None:
    option = referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="a@x")
    barrier = threading.Barrier(4)
    results: list = []

    def work(n: int) -> None:
        warehouse = Warehouse.from_settings(school)
        barrier.wait()
        results.append(
            referrals.refer(
                engine,
                school,
                warehouse,
                student_id="S1",
                incident_id="I1",
                option_id=option,
                reason=f"from {n}",
                actor=f"t{n}@x",
            )
        )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert len({r.referral_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(rows(engine, Referral)) == 1 and len(rows(engine, Notice)) == 1


@pytest.mark.parametrize(
    ("student", "incident", "message"),
    [
        ("S2", "I1", "Incident I1 is about pupil S1, not S2"),
        ("S9", "I1", "no pupil 'S9'"),
        ("S1", "I9", "no behaviour incident 'I9'"),
    ],
)
def test_a_referral_that_does_not_fit_is_refused(
    engine, school, warehouse, student, incident, message
) -> None:
    option = referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="a@x")
    with pytest.raises(ReferralProblem, match=message):
        referrals.refer(
            engine,
            school,
            warehouse,
            student_id=student,
            incident_id=incident,
            option_id=option,
            reason="",
            actor="t@x",
        )
    assert rows(engine, Referral) == [] and rows(engine, Notice) == []


def test_a_disabled_or_unknown_option_cannot_be_used(engine, school, warehouse) -> None:
    option = referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="a@x")
    referrals.set_option_enabled(engine, option, False, "a@x")
    kwargs = {"student_id": "S1", "incident_id": "I1", "reason": "", "actor": "t@x"}
    with pytest.raises(ReferralProblem, match="'Head of Year 10' is turned off"):
        referrals.refer(engine, school, warehouse, option_id=option, **kwargs)
    with pytest.raises(ReferralProblem, match="no referral option 42"):
        referrals.refer(engine, school, warehouse, option_id=42, **kwargs)
    assert rows(engine, Referral) == []


def test_a_referral_without_an_incident_is_never_merged(engine, school, warehouse) -> None:
    school_no_mail = Settings(school.data_dir, env={"SCHOOLCOMMS_ALERT_EMAILS": "false"})
    option = referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="a@x")
    kwargs = {"student_id": "S2", "incident_id": None, "option_id": option, "actor": "t@x"}
    one = referrals.refer(engine, school_no_mail, warehouse, reason="Worried", **kwargs)
    two = referrals.refer(engine, school_no_mail, warehouse, reason="Again", **kwargs)
    assert one.created and two.created and one.referral_id != two.referral_id
    assert one.emailed_to is None and rows(engine, Message) == []
    assert "Incident" not in rows(engine, Notice)[0].body


# ---- my referrals to action ---------------------------------------------------------------


@pytest.fixture
def referred(engine, school, warehouse) -> tuple[int, int]:
    year = referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="a@x")
    lead = referrals.add_option(engine, label="Behaviour lead", staff_id="T1", actor="a@x")
    common = {"reason": "", "actor": "t@x"}
    one = referrals.refer(
        engine, school, warehouse, student_id="S1", incident_id="I1", option_id=year, **common
    )
    two = referrals.refer(
        engine, school, warehouse, student_id="S2", incident_id="I2", option_id=lead, **common
    )
    return one.referral_id, two.referral_id


def test_referrals_for_a_member_of_staff_with_details(engine, warehouse, referred) -> None:
    to_tutor, to_teacher = referred
    mine = referrals.referrals_for(engine, "T2")
    assert mine["id"].tolist() == [to_tutor] and mine["status"].tolist() == ["open"]
    everyone = referrals.referrals_for(engine, None, None, warehouse=warehouse)
    assert everyone["id"].tolist() == [to_teacher, to_tutor]
    row = everyone.set_index("id").loc[to_tutor]
    assert (row["student_name"], row["form"], row["year_group"]) == ("Ann Able", "10A", "10")
    assert (row["incident_type"], row["to_name"]) == ("Disruption", "Mr Tom Tutor")
    assert str(row["incident_at"]) == "2026-11-19 10:15:00"
    assert referrals.referrals_for(engine, "T2", "actioned").empty
    with pytest.raises(ReferralProblem, match="Unknown referral status 'done'"):
        referrals.referrals_for(engine, "T2", "done")
    by_incident = referrals.referrals_by_incident(engine, ["I2", "I9"])
    assert by_incident["id"].tolist() == [to_teacher]


def test_only_the_referred_member_of_staff_or_pastoral_staff_action_it(engine, referred) -> None:
    to_tutor, to_teacher = referred
    with pytest.raises(PermissionDenied, match="Only the member of staff"):
        referrals.action_referral(
            engine,
            to_tutor,
            outcome_note="Spoke to him",
            actor="t1@x",
            staff_id="T1",
            is_admin=False,
        )
    with pytest.raises(ReferralProblem, match="Give the outcome"):
        referrals.action_referral(
            engine, to_tutor, outcome_note="  ", actor="t2@x", staff_id="T2", is_admin=False
        )
    referrals.action_referral(
        engine,
        to_tutor,
        outcome_note="Met with parents.",
        actor="t2@x",
        staff_id="T2",
        is_admin=False,
    )
    assert referrals.referrals_for(engine, "T2").empty
    [done] = referrals.referrals_for(engine, "T2", "actioned").to_dict("records")
    assert (done["outcome_note"], done["actioned_by"]) == ("Met with parents.", "t2@x")
    with pytest.raises(ReferralProblem, match="already actioned by t2@x"):
        referrals.action_referral(
            engine, to_tutor, outcome_note="Again", actor="t2@x", staff_id="T2", is_admin=False
        )
    assert referrals.can_action_any(["teacher", "pastoral"])
    assert not referrals.can_action_any(["teacher", "senior_leader"])
    referrals.action_referral(
        engine,
        to_teacher,
        outcome_note="Praised in assembly.",
        actor="p@x",
        staff_id=None,
        is_admin=True,
    )
    [entry, _] = audits(engine, "referral.action")
    assert entry["actor"] == "p@x" and entry["details"]["to"] == "actioned"
    referrals.close_referral(
        engine, to_tutor, actor="t2@x", staff_id="T2", is_admin=False, note="All settled."
    )
    [closed] = referrals.referrals_for(engine, "T2", "closed").to_dict("records")
    assert closed["outcome_note"] == "Met with parents.\n\nAll settled."
    assert len(audits(engine, "referral.close")) == 1
    with pytest.raises(ReferralProblem, match="no referral 999"):
        referrals.close_referral(engine, 999, actor="a@x", staff_id=None, is_admin=True)
