"""ICS calendars: real Google Calendar exports at known UK local times, feeds and storage.

Every file in ``shared/fixtures/ical`` is read in place and checked against events worked
out by hand from the file (time zone, daylight saving in both countries, EXDATE,
RECURRENCE-ID, COUNT, UNTIL); feeds are fetched from a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import SHARED_FIXTURES

from reports.calendar import (
    CalendarError,
    CalendarEvent,
    events_frame,
    fetch_ics,
    normalise_url,
    parse_calendar,
    upcoming_events,
)
from schoolcomms.ops.db import open_ops
from schoolcomms.ops.history import recent_audit
from schoolcomms.settings import Settings
from senders.calendars import (
    MAX_SOURCES,
    CalendarProblem,
    add_calendar_file,
    add_calendar_url,
    calendar_sources,
    remove_calendar,
)

ICAL = SHARED_FIXTURES / "ical"
D = dt.date
T = dt.datetime


def events(name: str, today: dt.date, days: int = 8) -> list[CalendarEvent]:
    return upcoming_events((ICAL / name).read_bytes(), today=today, days=days)


def starts(found: list[CalendarEvent], title: str | None = None) -> list[dt.datetime]:
    return [e.start for e in found if title is None or e.title == title]


# ---- every fixture file, at known UK local times ------------------------------------------


def check_alarm_google(name: str) -> None:
    # 18:15 UTC on 4 October 2024 is 19:15 in the UK (BST); the VALARMs change nothing.
    (event,) = events(name, D(2024, 10, 1))
    assert (event.title, event.start, event.end) == (
        "event with alarms",
        T(2024, 10, 4, 19, 15),
        T(2024, 10, 4, 20, 0),
    )
    assert event.calendar == "Nicco Kunzmann" and event.when() == "19:15–20:00"


def check_x_location(name: str) -> None:
    # 14:00 in Zurich, Monday to Friday: 13:00 in the UK before and after both countries
    # put the clocks back on Sunday 30 October 2016.
    found = events(name, D(2016, 10, 27))
    assert starts(found) == [
        T(2016, 10, 28, 13),
        T(2016, 10, 31, 13),
        T(2016, 11, 1, 13),
        T(2016, 11, 2, 13),
        T(2016, 11, 3, 13),
    ]
    assert found[0].location == "Roadstar 16\n12764 Happyville\nDenmark"
    assert found[0].end == T(2016, 10, 28, 13, 30)


def check_double_event(name: str) -> None:
    # One all-day event on 14 August 2020, once (not twice), and nothing else that week.
    (event,) = events(name, D(2020, 8, 10))
    assert event.all_day and event.title == "test2"
    assert (event.start, event.end) == (T(2020, 8, 14), T(2020, 8, 15))
    assert event.when() == "All day"
    assert events(name, D(2020, 8, 15)) == []


def check_lisbon_weekly(name: str) -> None:
    # Lisbon keeps UK time: 11:30 every Monday, across the clock change of 25 October 2020.
    found = events(name, D(2020, 10, 19), days=14)
    assert starts(found, "MDS-t") == [T(2020, 10, 19, 11, 30), T(2020, 10, 26, 11, 30)]
    assert events(name, D(2020, 9, 14), days=7) == []  # before DTSTART (21 September)


def check_chicago_dst(name: str) -> None:
    found = events(name, D(2020, 10, 23), days=14)
    # Fridays at 14:15 Chicago: 20:15 UK, but 19:15 in the week between the UK's clock
    # change (25 October) and Chicago's (1 November); 23 October is an EXDATE.
    assert starts(found, "Event#4") == [T(2020, 10, 30, 19, 15), T(2020, 11, 3, 20, 15)]
    assert T(2020, 10, 30, 15, 15) in starts(found, "Event#2")
    assert T(2020, 11, 2, 16, 15) in starts(found, "Event#2")
    # Thanksgiving week: EXDATEs on Thursday 26 and Friday 27 November remove six lessons.
    week = events(name, D(2020, 11, 23), days=7)
    assert sorted((e.title, e.start) for e in week) == [
        ("Event#1", T(2020, 11, 23, 14, 15)),
        ("Event#1", T(2020, 11, 24, 14, 15)),
        ("Event#2", T(2020, 11, 23, 16, 15)),
        ("Event#2", T(2020, 11, 24, 16, 15)),
        ("Event#3", T(2020, 11, 23, 18, 30)),
        ("Event#3", T(2020, 11, 24, 18, 30)),
        ("Event#4", T(2020, 11, 24, 20, 15)),
    ]
    # UNTIL 2020-09-23T04:59:59Z ends the first series on Tuesday 22 September (14:15 BST);
    # Wednesday 16 September is an EXDATE.
    september = events(name, D(2020, 9, 14), days=10)
    assert starts(september, "Event#1") == [
        T(2020, 9, 15, 14, 15),
        T(2020, 9, 17, 14, 15),
        T(2020, 9, 18, 14, 15),
        T(2020, 9, 21, 14, 15),
        T(2020, 9, 22, 14, 15),
    ]


def check_moved_karaoke(name: str) -> None:
    # Last Friday of the month, 21:30 Berlin = 20:30 UK; 31 December was moved to 17th.
    assert starts(events(name, D(2021, 11, 22))) == [T(2021, 11, 26, 20, 30)]
    (moved,) = events(name, D(2021, 12, 13))
    assert (moved.start, moved.end, moved.when()) == (
        T(2021, 12, 17, 20, 30),
        T(2021, 12, 17, 20, 30),
        "20:30",
    )
    assert events(name, D(2021, 12, 27)) == []
    assert starts(events(name, D(2022, 1, 24))) == [T(2022, 1, 28, 20, 30)]


def check_x_wr_timezone_simple(name: str) -> None:
    # Plain UTC times: 17:00 and 02:00 (next day) in the UK, whatever X-WR-TIMEZONE says.
    found = events(name, D(2021, 12, 22), days=2)
    assert [(e.start, e.end) for e in found] == [
        (T(2021, 12, 22, 17), T(2021, 12, 22, 18)),
        (T(2021, 12, 23, 2), T(2021, 12, 23, 3)),
    ]


def check_berlin_machbar(name: str) -> None:
    february = events(name, D(2019, 2, 10), days=20)
    repair = starts(february, "mB-onTour: repairCafé")
    # The third-Saturday repair café of 16 February was moved to Sunday 24th, 11:00 Berlin.
    assert repair == [T(2019, 2, 24, 10)]
    assert starts(february, "Chaostreff - CCCP")[:3] == [
        T(2019, 2, 13, 18),
        T(2019, 2, 20, 18),
        T(2019, 2, 27, 18),
    ]
    (hackademy,) = [e for e in february if e.title == "Open Health HACKademy"]
    assert (hackademy.start, hackademy.end) == (T(2019, 3, 1, 16, 30), T(2019, 3, 3, 17))
    assert hackademy.when() == "16:30–Sun 17:00"
    # School classes at 08:30 Berlin on Thursdays and Fridays; 7 and 8 March are EXDATEs.
    march = events(name, D(2019, 3, 4), days=14)
    assert starts(march, "Montessori Schulklasse") == [T(2019, 3, 14, 7, 30), T(2019, 3, 15, 7, 30)]
    # COUNT=6 on Monday to Wednesday from 4 March: six afternoons, then no more.
    free = starts(march, "Open Health HACKademy - freie Termine")
    assert free == [T(2019, 3, d, 13) for d in (4, 5, 6, 11, 12, 13)]
    # After both countries' clock change (31 March) Berlin is still an hour ahead.
    april = events(name, D(2019, 4, 1), days=7)
    assert starts(april, "Chaostreff - CCCP") == [T(2019, 4, 3, 18)]
    # The monthly series end with UNTIL: no repair café on 9 or 16 March.
    assert starts(march, "mB-onTour: repairCafé") == []


EXPECTED = {
    "icalendar/alarm_google_acknowledged.ics": check_alarm_google,
    "icalendar/x_location.ics": check_x_location,
    "recurring-ical-events/issue_44_double_event.ics": check_double_event,
    "recurring-ical-events/issue_48_daylight_aware_repeats.ics": check_lisbon_weekly,
    "recurring-ical-events/issue_48_dst.ics": check_chicago_dst,
    "recurring-ical-events/issue_62_moved_event.ics": check_moved_karaoke,
    "recurring-ical-events/x_wr_timezone_simple_events_issue_59.ics": check_x_wr_timezone_simple,
    "recurring-ical-events/daylight_saving_time.ics": check_berlin_machbar,
}


def test_every_fixture_file_has_known_events() -> None:
    files = sorted(str(p.relative_to(ICAL)) for p in ICAL.rglob("*.ics"))
    assert files == sorted(EXPECTED), "a new ICS fixture needs its known events below"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_events_at_known_uk_times(name: str) -> None:
    EXPECTED[name](name)


# ---- what Google and Outlook feeds also do ---------------------------------------------------


def ics(*events: str, header: str = "") -> str:
    body = "".join(f"BEGIN:VEVENT\n{e.strip()}\nEND:VEVENT\n" for e in events)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{header}{body}END:VCALENDAR\n"


WEEKLY_UTC = """
UID:briefing
DTSTART:20261019T080000Z
DTEND:20261019T083000Z
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:Briefing
"""


def test_x_wr_timezone_keeps_the_wall_clock_of_a_utc_series_across_the_clock_change() -> None:
    google = ics(WEEKLY_UTC, header="X-WR-TIMEZONE:Europe/London\nX-WR-CALNAME:Staff\n")
    found = upcoming_events(google, today=D(2026, 10, 19), days=21)
    # Google shows 09:00 every Monday: BST on 19 October, GMT after 25 October.
    assert starts(found) == [T(2026, 10, 19, 9), T(2026, 10, 26, 9), T(2026, 11, 2, 9)]
    assert {e.calendar for e in found} == {"Staff"}
    # Without the header the series is plain UTC: 09:00, then 08:00.
    plain = upcoming_events(ics(WEEKLY_UTC), today=D(2026, 10, 19), days=21)
    assert starts(plain) == [T(2026, 10, 19, 9), T(2026, 10, 26, 8), T(2026, 11, 2, 8)]


def test_tzid_without_vtimezone_rdate_exdate_cancelled_and_floating_times() -> None:
    calendar = ics(
        # New York is 5 hours behind, but 4 in the week the UK changes first.
        """
UID:ny
DTSTART;TZID=America/New_York:20261019T090000
DTEND;TZID=America/New_York:20261019T100000
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:New York call
""",
        # 09:00 UK every day, through the clock change; one EXDATE, one RDATE, and one
        # occurrence cancelled the way Google exports it.
        """
UID:daily
DTSTART;TZID=Europe/London:20261023T090000
DTEND;TZID=Europe/London:20261023T091500
RRULE:FREQ=DAILY;COUNT=5
EXDATE;TZID=Europe/London:20261024T090000
RDATE;TZID=Europe/London:20261030T150000
SUMMARY:Duty
""",
        """
UID:daily
RECURRENCE-ID;TZID=Europe/London:20261026T090000
DTSTART;TZID=Europe/London:20261026T090000
DTEND;TZID=Europe/London:20261026T091500
STATUS:CANCELLED
SUMMARY:Duty
""",
        """
UID:floating
DTSTART:20261028T120000
DTEND:20261028T130000
SUMMARY:Lunch
LOCATION:Staff room
""",
        """
UID:trip
DTSTART;VALUE=DATE:20261016
DTEND;VALUE=DATE:20261021
SUMMARY:Residential trip
""",
    )
    found = upcoming_events(calendar, today=D(2026, 10, 19), days=15)
    assert starts(found, "New York call") == [
        T(2026, 10, 19, 14),
        T(2026, 10, 26, 13),
        T(2026, 11, 2, 14),
    ]
    assert starts(found, "Duty") == [
        T(2026, 10, 23, 9),
        T(2026, 10, 25, 9),
        T(2026, 10, 27, 9),
        T(2026, 10, 30, 15),
    ]
    (lunch,) = [e for e in found if e.title == "Lunch"]
    assert (lunch.start, lunch.location) == (T(2026, 10, 28, 12), "Staff room")
    (trip,) = [e for e in found if e.title == "Residential trip"]
    assert trip.all_day and trip.when() == "All day (5 days)"
    frame = events_frame(found, today=D(2026, 10, 19))
    assert frame.iloc[0]["title"] == "Residential trip"
    assert frame.iloc[0]["day"] == D(2026, 10, 19)  # started before today: shown today
    assert list(frame.columns) == [
        "day",
        "start",
        "end",
        "all_day",
        "title",
        "location",
        "calendar",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("<!DOCTYPE html><html><body>Sign in</body></html>", "web page"),
        ("name,date\nfire drill,2026-10-20\n", "not an iCalendar"),
        ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:cut\n", "damaged"),
    ],
)
def test_what_is_not_a_calendar_is_said_in_words(text: str, words: str) -> None:
    with pytest.raises(CalendarError, match=words):
        parse_calendar(text)


def test_addresses_are_checked_and_webcal_becomes_https() -> None:
    assert normalise_url(" webcal://calendar.example.org/a.ics ") == (
        "https://calendar.example.org/a.ics"
    )
    for bad in ("calendar.example.org/a.ics", "ftp://x.example/a.ics", "file:///etc/passwd", ""):
        with pytest.raises(CalendarError, match="https://"):
            normalise_url(bad)


# ---- fetching a feed from a real local server ---------------------------------------------


class Feed(BaseHTTPRequestHandler):
    """Routes: /cal.ics, /moved (redirect), /missing (404), /page (HTML), /slow, /big."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body, status, headers = b"", 200, {"Content-Type": "text/calendar"}
        path = self.path.split("?", 1)[0]
        if path == "/cal.ics":
            body = (ICAL / "recurring-ical-events" / "issue_62_moved_event.ics").read_bytes()
        elif path == "/moved":
            status, headers = 302, {"Location": "/cal.ics?private=secret-token"}
        elif path == "/page":
            body, headers = (
                b"<html><body>Please sign in</body></html>",
                {"Content-Type": "text/html"},
            )
        elif path == "/slow":
            time.sleep(1.5)
            body = b"BEGIN:VCALENDAR\nEND:VCALENDAR\n"
        elif path == "/big":
            body = b"BEGIN:VCALENDAR\n" + b"X-FILL:" + b"x" * 3000 + b"\nEND:VCALENDAR\n"
        else:
            status = 404
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_feed_is_fetched_following_redirects(feed_server: str) -> None:
    text = fetch_ics(f"{feed_server}/moved", allow_private=True)
    found = upcoming_events(text, today=D(2021, 12, 13), source="Karaoke club")
    assert [(e.start, e.calendar) for e in found] == [(T(2021, 12, 17, 20, 30), "Karaoke club")]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/missing", "refused the calendar (HTTP 404)"),
        ("/page", "web page, not a calendar"),
        ("/slow", "did not answer within 0.5 seconds"),
        ("/big", "larger than"),
    ],
)
def test_feed_problems_are_said_in_words_without_the_secret_address(
    feed_server: str, path: str, words: str
) -> None:
    with pytest.raises(CalendarError, match=re.escape(words)) as caught:
        fetch_ics(
            f"{feed_server}{path}?token=s3cret", timeout=0.5, max_bytes=2000, allow_private=True
        )
    assert "s3cret" not in str(caught.value)


def test_an_unreachable_server_is_said_in_words() -> None:
    with pytest.raises(CalendarError, match="Could not reach 127.0.0.1"):
        fetch_ics("http://127.0.0.1:9/cal.ics", timeout=1, allow_private=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254"])
def test_private_addresses_are_refused_unless_allowed(feed_server: str, host: str) -> None:
    port = feed_server.rsplit(":", 1)[1]
    with pytest.raises(CalendarError, match="inside a private network") as caught:
        fetch_ics(f"http://{host}:{port}/moved?token=s3cret", timeout=1)
    assert "s3cret" not in str(caught.value)


# ---- each user's calendars in the ops store ------------------------------------------------


def test_users_add_and_remove_their_own_calendars_with_an_audit_trail(settings: Settings) -> None:
    engine = open_ops(settings)
    secret = "https://calendar.google.com/calendar/ical/t1%40school/private-abc123/basic.ics"
    url_id = add_calendar_url(engine, user_email="T.Teach@school.org", url=secret, actor="t@x")
    content = (ICAL / "icalendar" / "x_location.ics").read_bytes()
    file_id = add_calendar_file(engine, user_email="t.teach@school.org", content=content, actor="t")
    mine = calendar_sources(engine, "t.teach@school.org")
    assert [(s["id"], s["kind"], s["name"]) for s in mine] == [
        (url_id, "url", "calendar.google.com"),
        (file_id, "file", "ITC"),
    ]
    assert mine[0]["url"] == secret and "BEGIN:VCALENDAR" in mine[1]["content"]
    assert calendar_sources(engine, "someone.else@school.org") == []
    with pytest.raises(CalendarProblem, match="already on your homepage"):
        add_calendar_url(engine, user_email="t.teach@school.org", url=secret, actor="t")
    with pytest.raises(CalendarProblem, match="not on your homepage"):
        remove_calendar(engine, url_id, user_email="someone.else@school.org", actor="x")
    remove_calendar(engine, url_id, user_email="t.teach@school.org", actor="t")
    assert [s["id"] for s in calendar_sources(engine, "t.teach@school.org")] == [file_id]
    audit = recent_audit(engine)
    assert sorted(audit["action"]) == ["calendar.add", "calendar.add", "calendar.remove"]
    assert "private-abc123" not in repr(
        audit.to_dict("records")
    )  # the secret address stays out of the log
    assert audit[audit["action"] == "calendar.add"]["details"].iloc[-1]["server"] == (
        "calendar.google.com"
    )


def test_bad_calendars_are_refused_and_the_number_is_limited(settings: Settings) -> None:
    engine = open_ops(settings)
    with pytest.raises(CalendarProblem, match="not an iCalendar"):
        add_calendar_file(engine, user_email="a@school.org", content=b"hello", actor="a")
    with pytest.raises(CalendarProblem, match="https://"):
        add_calendar_url(engine, user_email="a@school.org", url="my calendar", actor="a")
    for n in range(MAX_SOURCES):
        add_calendar_url(
            engine, user_email="a@school.org", url=f"https://c.example.org/{n}.ics", actor="a"
        )
    with pytest.raises(CalendarProblem, match="remove one"):
        add_calendar_url(
            engine, user_email="a@school.org", url="https://c.example.org/x", actor="a"
        )
    assert calendar_sources(engine, "b@school.org") == []
