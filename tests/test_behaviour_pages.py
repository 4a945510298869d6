"""The Behaviour page: its reads, the follow-up templates and prefills, and the page itself.

A small school with behaviour incidents is loaded into a real warehouse; the page runs
with AppTest against it (real SQLite ops store), signed in with different roles.
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
from conftest import minimal_school, sign_in, write_extracts
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

# Imported before any page runs (AppTest puts dashboard/pages/ first on sys.path).
from dashboard import behaviour_ui as ui
from dashboard import common
from pipelines.load import load_paths
from reports import behaviour_pages as behaviour
from reports.behaviour import behaviour_summary
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import Notice, Referral
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse
from senders import referrals
from senders.bank import archive_template, get_template, list_templates, save_template

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "behaviour.py")
UK = ZoneInfo("Europe/London")
TIMEOUT = 60
START, END = dt.date(2026, 10, 24), dt.date(2026, 11, 20)


def incident(iid: str, student: str, at: str, kind: str, polarity: str, points: int, **kw: str):
    return {
        "incident_id": iid,
        "student_id": student,
        "occurred_at": at,
        "type": kind,
        "polarity": polarity,
        "points": str(points),
        "location": kw.get("location", "Classroom"),
        "outcome": kw.get("outcome", ""),
        "recorded_by": kw.get("by", "T1"),
        "comment": kw.get("comment", ""),
    }


INCIDENTS = [
    incident("I1", "S1", "2026-11-19 10:15", "Disruption", "negative", -1, outcome="Detention"),
    incident("I2", "S2", "2026-11-19 11:00", "Praise", "Positive", 1, by="T2"),
    incident("I3", "S3", "2026-11-18 09:30", "Disruption", "negative", -2, by="T2"),
    incident("I4", "S1", "2026-10-01 09:00", "Uniform", "negative", -1),
    incident("I5", "S2", "2026-11-20 08:50", "Bullying", "negative", -5, comment="=HYPERLINK(x)"),
]


@pytest.fixture
def school(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The minimal school with incidents, in the data folder the app uses."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(settings.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    tables = minimal_school()
    tables["behaviour"] = INCIDENTS
    report = load_paths(write_extracts(tmp_path / "school", tables), settings)
    assert report.ok, [p.as_text() for p in report.problems]
    return settings


@pytest.fixture
def warehouse(school: Settings) -> Warehouse:
    return Warehouse.from_settings(school)


@pytest.fixture
def friday_noon() -> Iterator[None]:
    with time_machine.travel(dt.datetime(2026, 11, 20, 12, 0, tzinfo=UK), tick=True):
        yield


def ids(frame: pd.DataFrame) -> list[str]:
    return frame["incident_id"].tolist()


# ---- reads ---------------------------------------------------------------------------------


def test_incidents_in_the_range_newest_first_with_names(warehouse: Warehouse) -> None:
    frame = behaviour.incidents(warehouse, behaviour.IncidentFilter(START, END))
    assert ids(frame) == ["I5", "I2", "I1", "I3"]
    assert list(frame.columns) == list(behaviour.INCIDENT_COLUMNS)
    first = frame.iloc[0]
    assert (first["name"], first["form"], first["year_group"]) == ("Ben Baker", "10A", "10")
    assert (first["points"], first["recorded_by_name"]) == (-5, "Ms Tara Teach")
    assert frame.set_index("incident_id").loc["I2", "polarity"] == "positive"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"types": ("Disruption",)}, ["I1", "I3"]),
        ({"polarity": "positive"}, ["I2"]),
        ({"year_groups": ("8",)}, ["I3"]),
        ({"forms": ("10A",), "polarity": "negative"}, ["I5", "I1"]),
        ({"search": "BAKER"}, ["I5", "I2", "I3"]),
        ({"search": "s1"}, ["I1"]),
        ({"recorded_by": "T2"}, ["I2", "I3"]),
        ({"types": ("Uniform",)}, []),
    ],
)
def test_incident_filters(warehouse: Warehouse, filters: dict, expected: list[str]) -> None:
    frame = behaviour.incidents(warehouse, behaviour.IncidentFilter(START, END, **filters))
    assert ids(frame) == expected


def test_the_filter_refuses_a_backwards_range_or_an_unknown_polarity() -> None:
    with pytest.raises(ValueError, match="ends"):
        behaviour.IncidentFilter(END, START)
    with pytest.raises(ValueError, match="positive or negative"):
        behaviour.IncidentFilter(START, END, polarity="neutral")


def test_the_summary_of_the_whole_range_is_the_weekly_reports(warehouse: Warehouse) -> None:
    query = behaviour.IncidentFilter(dt.date(2026, 9, 1), END)
    mine = behaviour.summarise(behaviour.incidents(warehouse, query), query)
    theirs = behaviour_summary(warehouse, query.start, query.end)
    assert (mine.incidents, mine.positive, mine.negative, mine.pupils, mine.points) == (
        theirs.incidents,
        theirs.positive,
        theirs.negative,
        theirs.pupils,
        theirs.points,
    )
    for name in ("by_type", "by_year_group", "top_pupils"):
        pd.testing.assert_frame_equal(
            getattr(mine, name).reset_index(drop=True),
            getattr(theirs, name).reset_index(drop=True),
            check_dtype=False,
        )
    assert mine.top_pupils["student_id"].tolist() == ["S1", "S2", "S3"]


def test_daily_counts_and_filter_options(warehouse: Warehouse) -> None:
    frame = behaviour.incidents(warehouse, behaviour.IncidentFilter(START, END))
    daily = behaviour.daily_counts(frame)
    assert [(str(d.date()), p, n) for d, p, n in daily.itertuples(index=False)] == [
        ("2026-11-18", "negative", 1),
        ("2026-11-19", "negative", 1),
        ("2026-11-19", "positive", 1),
        ("2026-11-20", "negative", 1),
    ]
    assert behaviour.daily_counts(frame.head(0)).empty
    assert behaviour.filter_options(warehouse) == {
        "types": ["Bullying", "Disruption", "Praise", "Uniform"],
        "year_groups": ["8", "10"],
        "forms": ["8B", "10A"],
    }


# ---- templates and prefills ---------------------------------------------------------------


def test_seeding_adds_the_starter_templates_once_and_keeps_a_schools_edits(school) -> None:
    engine = open_ops(school)
    save_template(
        engine,
        name="Detention: scheduled",
        channel="sms",
        subject=None,
        body="Our own words for {{ student.forename }}.",
        category="behaviour",
        actor="office@x",
    )
    added = ui.seed_behaviour_templates(engine)
    assert "Detention: scheduled" not in added
    assert len(added) == len(ui.FOLLOW_UP_TEMPLATES) - 1
    assert get_template(engine, "Detention: scheduled").body.startswith("Our own words")
    archive_template(engine, "Behaviour: positive", "office@x")
    assert ui.seed_behaviour_templates(engine) == []
    assert get_template(engine, "Behaviour: positive").archived


def bank(*entries: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"name": n, "channel": c, "subject": None, "body": f"{n} text", "archived": False}
            for n, c in entries
        ]
    )


def test_templates_are_found_by_name_channel_and_convention() -> None:
    templates = bank(
        ("Behaviour: default", "sms"),
        ("behaviour: DEFAULT (E-mail)", "email"),
        ("Behaviour: Disruption (text)", "sms"),
        ("Behaviour: Detention", "email"),
    )
    bases = ui.behaviour_bases("Disruption", "Detention", "negative")
    assert bases == [
        "Behaviour: Disruption",
        "Behaviour: Detention",
        "Behaviour: negative",
        "Behaviour: default",
    ]
    assert ui.find_template(templates, bases, "sms") == "Behaviour: Disruption (text)"
    assert ui.find_template(templates, bases, "email") == "Behaviour: Detention"
    assert ui.find_template(templates, ["Behaviour: default"], "email") == (
        "behaviour: DEFAULT (E-mail)"
    )
    assert ui.find_template(templates, bases, "letter") is None
    assert ui.behaviour_bases(None, float("nan"), "positive") == [
        "Behaviour: positive",
        "Behaviour: default",
    ]


def test_behaviour_follow_ups_and_their_prefills(school, warehouse) -> None:
    engine = open_ops(school)
    ui.seed_behaviour_templates(engine)
    templates = list_templates(engine)
    frame = behaviour.incidents(warehouse, behaviour.IncidentFilter(START, END))
    picked = frame[frame["incident_id"].isin(["I2", "I1", "I3"])]
    follow_ups = ui.behaviour_follow_ups(picked, templates, "sms")
    assert [(f.label, f.student_ids) for f in follow_ups] == [
        ("Behaviour: positive — Praise, Ben Baker (1 pupil)", ("S2",)),
        ("Behaviour: default — 2 incidents (2 pupils)", ("S1", "S3")),
    ]
    today = dt.date(2026, 11, 20)
    one = ui.prefill(follow_ups[0], "sms", templates, school, source="Behaviour", today=today)
    assert one["student_ids"] == ["S2"] and one["channel"] == "sms" and "template" not in one
    assert one["body"] == (
        "{{ student.preferred_forename }} has been recognised at school on Thursday 19 "
        "November (Praise). Well done! Sample School"
    )
    assert one["context"]["incident"]["occurred_at"] == "2026-11-19 11:00:00"
    several = ui.prefill(follow_ups[1], "sms", templates, school, source="Behaviour", today=today)
    assert several["template"] == "Behaviour: default" and "body" not in several
    assert several["source"] == "Behaviour" and several["recipients"] == "parents"
    letter = ui.prefill(
        ui.behaviour_follow_ups(picked[picked["incident_id"] == "I1"], templates, "letter")[0],
        "letter",
        templates,
        school,
        source="Behaviour",
        today=today,
    )
    assert "on Thursday 19 November (Disruption: Detention)." in letter["body"]
    assert letter["subject"] == "{{ student.name }} ({{ student.form }})"
    assert letter["from_template"] == "Behaviour: default (letter)"


def test_an_empty_bank_falls_back_to_the_starter_text(school) -> None:
    follow_up = ui.FollowUp("x", ("S1",), ("Behaviour: Praise", "Behaviour: default"), "incident")
    out = ui.prefill(
        follow_up, "email", bank(), school, source="Behaviour", today=dt.date(2026, 11, 20)
    )
    assert out["from_template"] == "Behaviour: default (email)"
    assert out["subject"] == "About {{ student.preferred_forename }}'s behaviour"
    assert "{% if incident is defined %}" in out["body"]


def test_details_are_filled_in_only_when_that_is_faithful(school) -> None:
    event = {"date": "2026-11-24", "start_time": "15:05", "location": "Room {{ 4 }}"}
    args = ("detention", event, school, "sms", dt.date(2026, 11, 20))
    filled = ui.fill_event(
        "{{ student.forename }}: {{ detention.date|ukdate('day') }} at {{ detention.start }} "
        "in {{ detention.location }}. {{ school.name }}, {{ today|ukdate('short') }}",
        *args,
    )
    assert filled == (
        "{{ student.forename }}: Tuesday 24 November at 15:05 in Room (( 4 )). "
        "Sample School, 20/11/2026"
    )
    assert ui.fill_event("{% for s in students %}{{ s.forename }}{% endfor %}", *args) is None
    assert ui.fill_event("{{ student.forename|upper }}", *args) is None
    assert ui.fill_event("{{ incident.type }}", *args) is None


# ---- the page ------------------------------------------------------------------------------


def run(at: AppTest | None = None, *roles: str, staff_id: str | None = None) -> AppTest:
    if at is None:
        at = sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT), *roles, staff_id=staff_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def table(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "incident_id" in d.value.columns)


def select_rows(at: AppTest, *rows: int) -> AppTest:
    at.session_state["behaviour_incidents"] = {"selection": {"rows": list(rows), "columns": []}}
    return run(at)


def prefill(at: AppTest) -> dict:
    return at.session_state["compose_prefill"]


@pytest.mark.parametrize("role", ["data_manager", "attendance_officer"])
def test_roles_without_the_page_are_turned_away(school, friday_noon, role: str) -> None:
    at = run(None, role)
    assert "cannot open this page" in texts(at.error)
    assert not at.dataframe


def test_nothing_loaded(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(settings.data_dir))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = run(None, "pastoral")
    assert "No data loaded yet" in texts(at.info)


def test_the_page_lists_summarises_and_filters(school, friday_noon) -> None:
    at = run(None, "senior_leader")
    assert at.title[0].value == "Behaviour"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Incidents": "4",
        "Negative": "3",
        "Positive": "1",
        "Pupils": "3",
        "Points": "-7",
    }
    assert table(at)["incident_id"].tolist() == ["I5", "I2", "I1", "I3"]
    assert len(at.get("vega_lite_chart")) == 2
    [download] = at.get("download_button")
    assert download.proto.label == "Download CSV"
    at.selectbox(key="behaviour_polarity").set_value("negative")
    at.multiselect(key="behaviour_years").set_value(["10"])
    run(at)
    assert table(at)["incident_id"].tolist() == ["I5", "I1"]
    at.text_input(key="behaviour_search").set_value("nobody")
    run(at)
    assert "No incidents match" in texts(at.info)

    at.text_input(key="behaviour_search").set_value("")
    run(at)
    select_rows(at, 0)
    assert "Your account cannot message parents." in texts(at.info)
    assert "Your account cannot send letters." in texts(at.info)


def test_refer_selected_incidents_from_the_page(school, friday_noon) -> None:
    engine = open_ops(school)
    at = run(None, "teacher", staff_id="T1")
    select_rows(at, 0, 2)  # I5 (Ben) and I1 (Ann)
    assert "The referral list is empty" in texts(at.info)
    option = referrals.add_option(engine, label="Head of Year 10", staff_id="T2", actor="a@x")
    run(at)
    at.text_area(key="behaviour_refer_reason").set_value("Both need a word.")
    at.button(key="behaviour_refer").click()
    run(at)
    assert "Referred 2 incident(s) to Mr Tom Tutor." in texts(at.success)
    with session_scope(engine, immediate=False) as session:
        stored = session.scalars(select(Referral).order_by(Referral.incident_id)).all()
        keys = session.scalars(select(Notice.key).order_by(Notice.key)).all()
    assert [(r.incident_id, r.student_id, r.to_staff_id) for r in stored] == [
        ("I1", "S1", "T2"),
        ("I5", "S2", "T2"),
    ]
    assert all(r.created_by == "teacher@school.example.org" for r in stored)
    assert stored[0].reason == "Both need a word."
    assert keys == [f"referral:I1:{option}", f"referral:I5:{option}"]
    shown = table(at).set_index("incident_id")
    assert shown.loc["I5", "referred"] == "Mr Tom Tutor (open)"
    assert shown.loc["I2", "referred"] == ""

    at.button(key="behaviour_refer").click()
    run(at)
    assert "2 incident(s) had already been referred to Mr Tom Tutor." in texts(at.info)
    with session_scope(engine, immediate=False) as session:
        assert len(session.scalars(select(Referral)).all()) == 2


def test_message_parents_hands_one_incident_to_compose(school, friday_noon) -> None:
    at = run(None, "pastoral")
    select_rows(at, 2)  # I1: Ann, Disruption, outcome Detention
    assert "Template: **Behaviour: default** with the details filled in" in texts(at.caption)
    at.radio(key="behaviour_message_channel").set_value("email")
    run(at)
    at.button(key="behaviour_message_go").click()
    run(at)
    sent = prefill(at)
    assert (sent["student_ids"], sent["channel"], sent["source"]) == (["S1"], "email", "Behaviour")
    assert sent["subject"] == "About {{ student.preferred_forename }}'s behaviour"
    assert "at school on Thursday 19 November (Disruption: Detention)." in sent["body"]
    assert sent["body"].startswith("Dear {{ contact.name }},")
    assert "ready in Compose" in texts(at.info)


def test_a_teacher_may_message_one_pupils_parents_at_a_time(school, friday_noon) -> None:
    at = run(None, "teacher", staff_id="T1")
    select_rows(at, 2, 3)  # I1 and I3: two pupils, one template
    assert at.button(key="behaviour_message_go").disabled
    assert "one pupil's parents at a time" in texts(at.caption)
    assert "Your account cannot send letters." in texts(at.info)
    select_rows(at, 3)
    assert not at.button(key="behaviour_message_go").disabled
    at.button(key="behaviour_message_go").click()
    run(at)
    assert prefill(at)["student_ids"] == ["S3"]


def test_letters_for_the_office(school, friday_noon) -> None:
    at = run(None, "office")
    select_rows(at, 1, 2)  # a positive and a negative incident: two follow-ups
    options = at.selectbox(key="behaviour_letter_group").options
    assert options == [
        "Behaviour: positive (letter) — Praise, Ben Baker (1 pupil)",
        "Behaviour: default (letter) — Disruption, Ann Able (1 pupil)",
    ]
    at.selectbox(key="behaviour_letter_group").set_value(1)
    run(at)
    at.button(key="behaviour_letter_go").click()
    run(at)
    sent = prefill(at)
    assert (sent["channel"], sent["student_ids"]) == ("letter", ["S1"])
    assert sent["from_template"] == "Behaviour: default (letter)"


def test_message_parents_opens_compose_with_the_pupil_and_the_text(
    school, friday_noon, tmp_path: Path
) -> None:
    """In a navigation like the dashboard's, the hand-over lands in Compose, filled in."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "pages").symlink_to(Path(PAGE).parent, target_is_directory=True)
    (app / "app.py").write_text(
        "import streamlit as st\n"
        "st.navigation([st.Page('pages/behaviour.py', title='Behaviour'),"
        " st.Page('pages/compose.py', title='Compose')]).run()\n"
    )
    at = sign_in(AppTest.from_file(str(app / "app.py"), default_timeout=TIMEOUT), "pastoral")
    run(at)
    select_rows(at, 2)  # I1: Ann Able
    at.button(key="behaviour_message_go").click()
    run(at)
    assert [t.value for t in at.title] == ["Compose a message"]
    assert "1 pupil from Behaviour: Disruption on Thursday 19 November" in texts(at.info)
    assert at.session_state["compose_body"].startswith(
        "We would like to talk to you about {{ student.preferred_forename }}'s behaviour"
    )


def test_downloads_are_built_on_demand_with_formulas_escaped(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: dict = {}
    monkeypatch.setattr(
        common.st, "download_button", lambda *a, **kw: captured.update(args=a, kw=kw)
    )
    frame = behaviour.incidents(warehouse, behaviour.IncidentFilter(START, END))
    common.download(frame, "behaviour.csv", "csv_key")
    label, data = captured["args"]
    assert label == "Download CSV" and callable(data)
    assert captured["kw"]["file_name"] == "behaviour.csv"
    text = data().decode("utf-8-sig")
    assert text.splitlines()[0].startswith("incident_id,occurred_at,student_id,name")
    assert ",'=HYPERLINK(x)" in text and ",'-5," in text
