"""The signed-in Home page (notices, assistance, referrals, registers, calendar) and the
Scheduler page, driven with AppTest against a real data folder and ops store."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import streamlit as st
import time_machine
from conftest import minimal_school, sign_in, write_extracts
from streamlit.testing.v1 import AppTest

# Imported before any page runs: AppTest puts dashboard/pages/ first on sys.path.
from dashboard import home_ui
from pipelines.load import load_paths
from scheduler.runs import finish_run, start_run
from schoolcomms.auth import SignedIn
from schoolcomms.ops.db import open_ops
from schoolcomms.ops.history import recent_audit
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse
from senders.assistance import open_requests, request_assistance
from senders.calendars import add_calendar_file, add_calendar_url, calendar_sources
from senders.notices import StaffNotice, deliver, notices_for
from senders.referrals import add_option, refer, referrals_for

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "pages" / "home.py")
SCHEDULER = str(ROOT / "dashboard" / "pages" / "scheduler_jobs.py")
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 60
UK = ZoneInfo("Europe/London")
DAY = "2026-11-20"  # a Friday
TEACHER = "teacher@school.example.org"
OFFICE = "office@school.example.org"


def lesson(lid: str, start: str, staff: str, class_id: str, taken: str = "") -> dict:
    return {
        "lesson_id": lid,
        "date": DAY,
        "start_time": start,
        "end_time": f"{int(start[:2]) + 1:02d}:{start[3:]}",
        "kind": "lesson",
        "period": "1",
        "class_id": class_id,
        "subject": "Maths" if class_id == "10A/Ma" else "English",
        "staff_id": staff,
        "room": "M1" if staff == "T1" else "E1",
        "register_taken_at": taken,
    }


@pytest.fixture
def school(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A school day loaded into a data folder the app uses; nothing of the developer's."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    settings = Settings(data, env={}, secrets_file=tmp_path / "no-secrets.toml")
    tables = minimal_school()
    tables["lessons"] += [
        lesson("MA1", "09:00", "T1", "10A/Ma"),
        lesson("EN1", "09:00", "T2", "8B/En"),
        lesson("MA0", "08:30", "T1", "10A/Ma", taken=f"{DAY} 08:35"),
        lesson("MA2", "11:00", "T1", "10A/Ma"),  # not started at 09:40
    ]
    assert load_paths(write_extracts(tmp_path / "school", tables), settings).ok
    return settings


@pytest.fixture
def at_0940() -> Iterator[None]:
    with time_machine.travel(dt.datetime(2026, 11, 20, 9, 40, tzinfo=UK), tick=True):
        yield


def page(
    path: str = HOME,
    *roles: str,
    staff_id: str | None = None,
    email: str | None = None,
    **state: object,
) -> AppTest:
    at = sign_in(
        AppTest.from_file(path, default_timeout=TIMEOUT), *roles, staff_id=staff_id, email=email
    )
    for key, value in state.items():
        at.session_state[key] = value
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def teacher(**state: object) -> AppTest:
    return page(HOME, "teacher", staff_id="T1", **state)


def notice(key: str, **kw: object) -> StaffNotice:
    fields: dict = {"title": f"Notice {key}", "body": f"Body of {key}", "source": "alert"}
    fields.update(kw)
    return StaffNotice(key, **fields)


def markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table shown with all these columns."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no table with columns {columns}")


def has_table(at: AppTest, *columns: str) -> bool:
    return any(set(columns) <= set(e.value.columns) for e in at.dataframe)


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button if b.key}


# ---- notices ---------------------------------------------------------------------------


def test_a_teacher_sees_their_own_and_their_roles_notices_only(school: Settings) -> None:
    engine = open_ops(school)
    deliver(
        engine,
        school,
        [
            notice("a", staff_id="T1"),
            notice("b", staff_id="T2"),
            notice("t", audience="teacher"),
            notice("d", audience="data_manager"),
        ],
    )
    at = teacher()
    shown = markdown(at)
    assert "Notice a" in shown and "Notice t" in shown
    assert "Notice b" not in shown and "Notice d" not in shown
    assert not [r for r in at.radio if r.key == "home_view"]  # no "Notices for" picker
    assert metrics(at)["Unread notices"] == "2"
    mine = notices_for(engine, staff_id="T1")[0]
    at.button(key=f"read_{mine['id']}").click()
    run(at)
    assert notices_for(engine, staff_id="T1")[0]["read_at"] is not None
    assert metrics(at)["Unread notices"] == "1"


def test_a_teacher_cannot_switch_to_everyone_even_through_the_session(school: Settings) -> None:
    deliver(open_ops(school), school, [notice("b", staff_id="T2")])
    at = teacher(home_view="everyone")
    assert "Notice b" not in markdown(at)


def test_only_accounts_that_may_read_all_get_everyones_notices() -> None:
    teacher_account = SignedIn(1, TEACHER, "Tess", ("teacher", "office"), "T1")
    assert home_ui.notice_scope(teacher_account, home_ui.EVERYONE) == {
        "staff_id": "T1",
        "audiences": ["teacher", "office"],
        "everyone": False,
    }
    leader = SignedIn(2, "sl@school.example.org", "Sam", ("senior_leader",), None)
    assert home_ui.notice_scope(leader, home_ui.EVERYONE)["everyone"] is True
    assert home_ui.notice_scope(leader, home_ui.MINE) == {
        "staff_id": None,
        "audiences": ["senior_leader"],
        "everyone": False,
    }


def test_a_senior_leader_may_pick_everyone(school: Settings) -> None:
    engine = open_ops(school)
    deliver(
        engine,
        school,
        [notice("a", staff_id="T1"), notice("s", audience="senior_leader")],
    )
    at = page(HOME, "senior_leader")
    assert at.radio(key="home_view").options == ["My notices", "Everyone's notices"]
    assert "Notice s" in markdown(at) and "Notice a" not in markdown(at)
    at.radio(key="home_view").set_value("everyone")
    run(at)
    assert "Notice s" in markdown(at) and "Notice a" in markdown(at)


def test_urgent_unread_notices_pop_up_once(school: Settings) -> None:
    engine = open_ops(school)
    deliver(engine, school, [notice("u", staff_id="T1", urgent=True, title="Truancy: Ann Able")])
    at = teacher()
    assert at.button(key="popup_read").label == "Mark as read"
    at.button(key="popup_read").click()
    run(at)
    assert notices_for(engine, staff_id="T1", unread_only=True) == []
    assert "popup_read" not in keys(at)


# ---- assistance --------------------------------------------------------------------------


def test_a_teacher_asks_for_help_and_the_office_sees_it_live_until_acknowledged(
    school: Settings,
) -> None:
    engine = open_ops(school)
    staff = teacher()
    staff.text_input(key="assist_location").set_value("Room M1")
    staff.text_area(key="assist_message").set_value("Pupil fainted")
    staff.button(key="assist_send").click()
    run(staff)
    (request,) = open_requests(engine)
    assert (request["location"], request["requested_by"], request["staff_id"]) == (
        "Room M1",
        TEACHER,
        "T1",
    )
    assert "has gone to the office" in texts(staff.success)
    assert "waiting for someone to acknowledge it" in texts(staff.warning)
    assert f"ack_{request['id']}" not in keys(staff)  # teachers do not acknowledge

    office = page(HOME, "office")
    assert "Assistance needed: Room M1" in texts(office.error)
    assert "Pupil fainted" in texts(office.error)
    # The urgent office notice pops up as well.
    assert "popup_read" in keys(office)
    # A second request arrives while the page is open: the next poll shows it.
    request_assistance(engine, school, location="Sports hall", actor="pe@school.example.org")
    run(office)
    assert "Assistance needed: Sports hall" in texts(office.error)

    office.button(key=f"ack_{request['id']}").click()
    run(office)
    assert [r["location"] for r in open_requests(engine)] == ["Sports hall"]
    assert "Assistance needed: Room M1" not in texts(office.error)
    assert "help for Room M1 is on the way" in texts(office.success)
    audit = recent_audit(engine)
    acks = audit[audit["action"] == "assistance.acknowledge"]
    assert acks["actor"].tolist() == [OFFICE]
    (office_notice,) = [
        n for n in notices_for(engine, audiences=["office"]) if "Room M1" in n["title"]
    ]
    assert office_notice["read_at"] is not None  # it stops popping up for everyone

    run(staff)
    assert f"acknowledged by {OFFICE}" in texts(staff.success)


def test_a_blank_location_is_refused_in_words(school: Settings) -> None:
    at = teacher()
    at.button(key="assist_send").click()
    run(at)
    assert "Say where help is needed" in texts(at.error)
    assert open_requests(open_ops(school)) == []


# ---- registers and referrals ---------------------------------------------------------------


def test_a_teacher_sees_only_their_own_missing_registers(school: Settings, at_0940: None) -> None:
    at = teacher()
    mine = table(at, "class_id", "minutes_missing")
    assert mine["class_id"].tolist() == ["10A/Ma"] and mine["start"].tolist() == ["09:00"]
    assert metrics(at)["Missing registers"] == "1"
    other = page(HOME, "teacher", staff_id="T2", email="t2@school.example.org")
    assert table(other, "class_id", "minutes_missing")["class_id"].tolist() == ["8B/En"]


def test_an_account_without_a_staff_record_is_told_why_nothing_is_shown(
    school: Settings, at_0940: None
) -> None:
    at = page(HOME, "office")
    assert "not linked to a staff record" in texts(at.info)
    assert metrics(at)["Missing registers"] == "–"


def test_a_teacher_actions_a_referral(school: Settings) -> None:
    engine = open_ops(school)
    option = add_option(engine, label="Class teacher", staff_id="T1", actor="admin@s.org")
    referred = refer(
        engine,
        school,
        Warehouse.from_settings(school),
        student_id="S1",
        incident_id=None,
        option_id=option,
        reason="Upset after break",
        actor="pastoral@s.org",
    )
    at = teacher()
    assert metrics(at)["Referrals to action"] == "1"
    assert "Ann Able" in markdown(at)
    at.button(key=f"ref_done_{referred.referral_id}").click()
    run(at)
    assert "Give the outcome" in texts(at.error)  # a note is required
    at.text_area(key=f"ref_note_{referred.referral_id}").set_value("Spoke to Ann; fine now.")
    at.button(key=f"ref_done_{referred.referral_id}").click()
    run(at)
    assert referrals_for(engine, "T1").empty
    (done,) = referrals_for(engine, "T1", "actioned").to_dict("records")
    assert (done["outcome_note"], done["actioned_by"]) == ("Spoke to Ann; fine now.", TEACHER)
    assert metrics(at)["Referrals to action"] == "0"


# ---- calendar ------------------------------------------------------------------------------

WEEK = """BEGIN:VCALENDAR
VERSION:2.0
X-WR-CALNAME:Staff calendar
X-WR-TIMEZONE:Europe/London
BEGIN:VEVENT
UID:briefing
DTSTART;TZID=Europe/London:20261116T083000
DTEND;TZID=Europe/London:20261116T085000
RRULE:FREQ=WEEKLY;BYDAY=MO,FR
SUMMARY:Staff briefing
LOCATION:Library
END:VEVENT
BEGIN:VEVENT
UID:parents
DTSTART:20261124T170000Z
DTEND:20261124T190000Z
SUMMARY:Year 10 parents' evening
END:VEVENT
BEGIN:VEVENT
UID:inset
DTSTART;VALUE=DATE:20261130
DTEND;VALUE=DATE:20261201
SUMMARY:INSET day
END:VEVENT
END:VCALENDAR
"""


class Feed(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = WEEK.encode() if self.path == "/week.ics" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feed(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A calendar feed on 127.0.0.1, which the setting must allow (private addresses)."""
    monkeypatch.setenv("SCHOOLCOMMS_CALENDAR_ALLOW_PRIVATE_HOSTS", "true")
    st.cache_resource.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_teacher_adds_a_calendar_feed_and_sees_the_week(
    school: Settings, at_0940: None, feed: str
) -> None:
    at = teacher()
    assert "Add your calendar" in texts(at.info)
    at.text_input(key="cal_name").set_value("School")
    at.text_input(key="cal_url").set_value(f"{feed}/week.ics")
    at.button(key="cal_add_url").click()
    run(at)
    engine = open_ops(school)
    (source,) = calendar_sources(engine, TEACHER)
    assert (source["name"], source["kind"]) == ("School", "url")
    events = table(at, "day", "title")
    assert events.to_dict("records") == [
        {
            "day": "Today",
            "time": "08:30 – 08:50",
            "title": "Staff briefing",
            "location": "Library",
            "calendar": "School",
        },
        {
            "day": "Mon 23 Nov",
            "time": "08:30 – 08:50",
            "title": "Staff briefing",
            "location": "Library",
            "calendar": "School",
        },
        {
            "day": "Tue 24 Nov",
            "time": "17:00 – 19:00",
            "title": "Year 10 parents' evening",
            "location": "",
            "calendar": "School",
        },
        {
            "day": "Fri 27 Nov",
            "time": "08:30 – 08:50",
            "title": "Staff briefing",
            "location": "Library",
            "calendar": "School",
        },
    ]
    assert metrics(at)["Events today"] == "1"
    assert "calendar.add" in set(recent_audit(engine)["action"])

    at.button(key=f"cal_remove_{source['id']}").click()
    run(at)
    assert calendar_sources(engine, TEACHER) == []
    assert not has_table(at, "day", "title")


def test_calendar_files_and_broken_feeds_are_shown_in_words(
    school: Settings, at_0940: None, feed: str
) -> None:
    engine = open_ops(school)
    add_calendar_file(engine, user_email=TEACHER, content=WEEK, actor=TEACHER)
    add_calendar_url(
        engine, user_email=TEACHER, url=f"{feed}/gone.ics", actor=TEACHER, name="Old feed"
    )
    add_calendar_file(engine, user_email="someone@school.example.org", content=WEEK, actor="x")
    at = teacher()
    events = table(at, "day", "title")
    assert events["calendar"].unique().tolist() == ["Staff calendar"]  # mine only, once
    assert len(events) == 4
    assert "Old feed: 127.0.0.1 refused the calendar (HTTP 404)" in texts(at.warning)
    at.text_input(key="cal_url").set_value("not an address")
    at.button(key="cal_add_url").click()
    run(at)
    assert "https://" in texts(at.error)
    assert len(calendar_sources(engine, TEACHER)) == 2


# ---- the Scheduler page and the app --------------------------------------------------------


def test_scheduler_page_lists_every_job_and_the_newest_error(school: Settings) -> None:
    engine = open_ops(school)
    slot = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    run_id = start_run(engine, "dispatch", slot, slot, "test:1")
    assert run_id is not None
    finish_run(engine, run_id, "error", slot, error="RuntimeError: gateway exploded")
    at = page(SCHEDULER)
    table = at.dataframe[0].value
    assert {"dispatch", "absence_texts", "load_drop_folder", "delivery"} <= set(table["job"])
    assert "dispatch" in "\n".join(str(e.value) for e in at.error)
    runs = at.dataframe[1].value
    assert runs["outcome"].tolist() == ["error"] and "gateway exploded" in runs["error"].iloc[0]
    downloads = [b.proto.id.rsplit("-", 1)[-1] for b in at.get("download_button")]
    assert downloads == ["scheduler_jobs_csv", "scheduler_runs_csv"]


def test_app_opens_on_home_once_data_is_loaded(school: Settings) -> None:
    at = page(APP, "teacher", staff_id="T1")
    assert "Unread notices" in metrics(at)
    assert "assist_send" in keys(at)
