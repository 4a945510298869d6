"""The "Alert rules" page, driven with AppTest against a real data folder and ops store.

The school day of tests/test_alerts.py is loaded; the clock is moved to 11:10 that day
(time_machine) so that "who would be alerted now" has a truant to show.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import streamlit as st
import time_machine
from conftest import sign_in
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from test_alerts import load, school_day

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import AlertFiring, AuditEntry, Message, Notice
from schoolcomms.settings import DATA_DIR_ENV, Settings
from senders.alerts.rules import create_group, create_rule, list_groups, list_rules

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "alert_rules.py")
UK = ZoneInfo("Europe/London")
TIMEOUT = 60


@pytest.fixture
def page_data(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app pointed at ``settings``' data folder, nothing of the developer's set-up."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(settings.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    return settings


@pytest.fixture
def school(page_data: Settings, tmp_path: Path) -> Settings:
    load(page_data, tmp_path / "day", school_day())
    return page_data


@pytest.fixture
def at_1110() -> Iterator[None]:
    with time_machine.travel(dt.datetime(2026, 11, 20, 11, 10, tzinfo=UK), tick=True):
        yield


def run(at: AppTest | None = None, *roles: str) -> AppTest:
    at = at or sign_in(
        AppTest.from_file(PAGE, default_timeout=TIMEOUT), *(roles or ("senior_leader",))
    )
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


COLUMNS = {
    "ar_rules": ("summary", "recipients", "last_fired"),
    "ar_preview_table": ("pupil", "alert", "staff", "gaps"),
    "ar_groups_table": ("members", "used_by"),
}


def table(at: AppTest, key: str) -> pd.DataFrame:
    """The dataframe shown under ``key`` (found by its columns: AppTest has no keys)."""
    for element in at.dataframe:
        if set(COLUMNS[key]) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no dataframe {key}")


def stored(settings: Settings) -> list[dict]:
    return list_rules(open_ops(settings))


def truancy(settings: Settings, **kw: object) -> int:
    notify = {"roles": ["form_tutor", "attendance_officer"]}
    fields = {"name": "Truancy", "kind": "truancy", "params": {}, "notify": notify} | kw
    return create_rule(open_ops(settings), actor="test", **fields)  # type: ignore[arg-type]


def test_nothing_loaded_shows_the_empty_state(page_data: Settings) -> None:
    at = run()
    assert at.title[0].value == "Alert rules"
    assert "No data loaded yet" in texts(at.info)


def test_starter_rules_are_added_and_listed(school: Settings) -> None:
    at = run()
    assert "No alert rules yet" in texts(at.info)
    at.button(key="ar_seed").click()
    run(at)
    assert "Added 4 rule(s)" in texts(at.success)
    listed = table(at, "ar_rules")
    assert "Truancy" in listed["name"].tolist()
    row = listed[listed["name"] == "Truancy"].iloc[0]
    assert (
        row["enabled"]
        and row["urgent"]
        and row["recipients"] == ("Head of year, Attendance officer")
    )
    assert len(stored(school)) == 4


def test_create_a_rule_with_a_form_for_its_kind(school: Settings) -> None:
    at = run()
    at.text_input(key="ar_name").set_value("O or N in year 10")
    at.selectbox(key="ar_kind").set_value("attendance_code")
    run(at)
    assert at.multiselect(key="ar_codes").value == ["O"]
    assert "Class teacher" in at.multiselect(key="ar_roles").options
    at.multiselect(key="ar_codes").set_value(["O", "N"])
    at.multiselect(key="ar_years").set_value(["10"])
    at.multiselect(key="ar_roles").set_value(["form_tutor", "class_teacher"])
    at.checkbox(key="ar_urgent").check()
    run(at)
    at.button(key="ar_save").click()
    run(at)
    assert "Saved the new rule 'O or N in year 10'" in texts(at.success)
    (rule,) = stored(school)
    assert (rule["kind"], rule["urgent"], rule["enabled"]) == ("attendance_code", True, True)
    assert rule["params"] == {
        "codes": ["O", "N"],
        "year_groups": ["10"],
        "forms": [],
        "include_sessions": True,
    }
    assert rule["notify"]["roles"] == ["form_tutor", "class_teacher"]
    assert at.selectbox(key="ar_choice").value == rule["id"], "the saved rule stays chosen"
    with session_scope(open_ops(school), immediate=False) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("alert_rule.%"))
        ).one()
    assert (entry.actor, entry.action) == ("senior_leader@school.example.org", "alert_rule.create")


def test_a_bad_rule_is_refused_with_the_problems(school: Settings) -> None:
    at = run()
    at.text_input(key="ar_name").set_value("Fights")
    at.selectbox(key="ar_kind").set_value("behaviour_incident")
    run(at)
    assert "Class teacher" not in at.multiselect(key="ar_roles").options
    at.multiselect(key="ar_roles").set_value([])
    run(at)
    at.button(key="ar_save").click()
    run(at)
    problems = texts(at.error)
    assert "list the incident types" in problems and "Nobody would be told" in problems
    assert stored(school) == []


def test_edit_switch_off_and_on_and_delete(school: Settings) -> None:
    rule_id = truancy(school)
    at = run()
    at.selectbox(key="ar_choice").set_value(rule_id)
    run(at)
    assert at.text_input(key="ar_name").value == "Truancy"
    assert at.multiselect(key="ar_roles").value == ["form_tutor", "attendance_officer"]
    at.checkbox(key="ar_urgent").check()
    run(at)
    at.button(key="ar_save").click()
    run(at)
    assert "urgent changed" in texts(at.success)
    at.button(key="ar_toggle").click()
    run(at)
    assert not stored(school)[0]["enabled"]
    assert not table(at, "ar_rules")["enabled"].iloc[0]
    assert at.button(key="ar_toggle").label == "Switch on"
    at.button(key="ar_toggle").click()
    run(at)
    assert stored(school)[0]["enabled"]
    assert at.button(key="ar_delete").disabled
    at.checkbox(key="ar_confirm_delete").check()
    run(at)
    at.button(key="ar_delete").click()
    run(at)
    assert stored(school) == [] and "deleted" in texts(at.success)
    with session_scope(open_ops(school), immediate=False) as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        actions = [a.action for a in rows if a.action.startswith("alert_rule.")]
    assert actions == [
        "alert_rule.create",
        "alert_rule.update",
        "alert_rule.disable",
        "alert_rule.enable",
        "alert_rule.delete",
    ]


def test_preview_shows_who_would_be_alerted_and_sends_nothing(
    school: Settings, at_1110: None
) -> None:
    rule_id = truancy(school, enabled=False)
    at = run()
    at.selectbox(key="ar_choice").set_value(rule_id)
    run(at)
    at.button(key="ar_preview").click()
    run(at)
    assert "nothing has been sent" in texts(at.markdown)
    preview = table(at, "ar_preview_table")
    assert preview["pupil"].tolist() == ["S1"]
    assert preview["staff"].iloc[0] == "Mr Tom Tutor, Ms Olly Attend"
    assert {m.label: m.value for m in at.metric}["Alerts"] == "1"
    assert len(at.get("download_button")) == 2  # the rules, and this preview
    with session_scope(open_ops(school), immediate=False) as session:
        for model in (AlertFiring, Notice, Message):
            assert list(session.scalars(select(model))) == []


def test_preview_of_an_unsaved_rule_shows_gaps(school: Settings, at_1110: None) -> None:
    at = run()
    at.selectbox(key="ar_kind").set_value("attendance_code")
    run(at)
    at.multiselect(key="ar_forms").set_value(["8B"])
    run(at)
    at.button(key="ar_preview").click()
    run(at)
    preview = table(at, "ar_preview_table")
    assert preview["pupil"].tolist() == ["S3"]
    assert preview["staff"].iloc[0] == "nobody"
    assert preview["gaps"].iloc[0] == "no form tutor for form 8B"
    assert stored(school) == []


def test_staff_groups_are_created_and_used(school: Settings) -> None:
    at = run()
    at.text_input(key="ar_group_name").set_value("Pastoral team")
    at.multiselect(key="ar_group_staff").set_value(["T3", "T5"])
    run(at)
    at.button(key="ar_group_save").click()
    run(at)
    assert "Saved the staff group 'Pastoral team'" in texts(at.success)
    (group,) = list_groups(open_ops(school))
    assert group["staff_ids"] == ["T3", "T5"]
    members = table(at, "ar_groups_table")["members"].iloc[0]
    assert members == "Mrs Hana Year (T3), Ms Olly Attend (T5)"
    assert "Pastoral team" in at.multiselect(key="ar_groups").options


def test_a_group_in_use_is_not_deleted(school: Settings) -> None:
    engine = open_ops(school)
    group_id = create_group(engine, name="Care", staff_ids=["T3"], actor="test")
    truancy(school, notify={"groups": ["Care"]})
    at = run()
    at.selectbox(key="ar_group_choice").set_value(group_id)
    run(at)
    assert at.text_input(key="ar_group_name").value == "Care"
    at.button(key="ar_group_delete").click()
    run(at)
    assert "used by the rule(s) Truancy" in texts(at.error)
    assert len(list_groups(engine)) == 1


def test_only_senior_leaders_and_admins_may_open_the_page(school: Settings) -> None:
    teacher = run(None, "teacher")
    assert "cannot open this page" in texts(teacher.error)
    assert not teacher.button and not teacher.text_input
    assert run(None, "admin").title[0].value == "Alert rules"


def test_every_change_is_checked_again_when_it_runs(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every role that may open the page may change rules: the page gate is opened for a
    # teacher here, so what must refuse is the check when each change runs.
    from dashboard import common
    from schoolcomms.roles import ACTION_ROLES, PAGE_ROLES

    assert set(ACTION_ROLES["alerts.edit"]) == set(PAGE_ROLES["alert_rules"])
    engine = open_ops(school)
    monkeypatch.setattr(common, "check_page", lambda roles, page: None)
    at = run(None, "teacher")
    assert at.title[0].value == "Alert rules"
    changes = {"ar_seed", "ar_save", "ar_toggle", "ar_delete", "ar_group_save", "ar_group_delete"}
    assert not {b.key for b in at.button} & changes
    assert at.button(key="ar_preview")  # looking is not changing

    offered: dict[str, pd.DataFrame] = {}
    real = common.download

    def download(frame: pd.DataFrame, file_name: str, key: str, **kw: object) -> None:
        offered[key] = frame
        real(frame, file_name, key)

    monkeypatch.setattr(common, "download", download)
    monkeypatch.setattr(common, "user_can", lambda action: True)
    run(at)
    at.button(key="ar_seed").click()
    run(at)
    assert "may not do this (alerts.edit)" in texts(at.error)
    assert stored(school) == []

    rule_id = truancy(school)
    group_id = create_group(engine, name="Care", staff_ids=["T3"], actor="test")
    run(at)
    assert set(offered) == {"ar_rules_csv", "ar_groups_csv"}
    assert offered["ar_rules_csv"]["name"].tolist() == ["Truancy"]
    at.selectbox(key="ar_choice").set_value(rule_id)
    at.selectbox(key="ar_group_choice").set_value(group_id)
    run(at)
    for key in ("ar_save", "ar_toggle", "ar_group_save", "ar_group_delete"):
        at.button(key=key).click()
        run(at)
        assert "may not do this (alerts.edit)" in texts(at.error), key
        run(at)
    at.checkbox(key="ar_confirm_delete").check()
    run(at)
    at.button(key="ar_delete").click()
    run(at)
    assert "may not do this (alerts.edit)" in texts(at.error)
    (rule,) = stored(school)
    assert rule["enabled"] and rule["name"] == "Truancy"
    assert [g["name"] for g in list_groups(engine)] == ["Care"]
