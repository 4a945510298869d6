"""An attendance officer texts two families and sees the texts sent.

Sign in → Attendance (the sample's school day) → tick two absent pupils → Message
parents → Compose, prefilled → SMS with her own text → Preview → Send → the
dispatcher runs (file gateway: ``data/outbox/sms``) → Compose follows the batch to
"sent" without a reload → Message history lists both pupils' texts as sent.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from schoolcomms.warehouse import Warehouse

from .conftest import SAMPLE_DATE, School
from .streamlit_ui import (
    dataframe,
    errors,
    exceptions,
    grid_rows,
    metric_value,
    open_page,
    select_grid_rows,
    set_date,
    settle,
    visible_rows,
)

TEXT = "Please call the school office today about {{ student.forename }}. Thank you."

# Pupils whose one priority-1 contact can be texted and is no sibling's contact, so
# each chosen pupil gets exactly one text of their own.
ONE_TEXTABLE_CONTACT = """
WITH p1 AS (SELECT * FROM contacts WHERE priority = 1),
     shared AS (SELECT contact_id FROM contacts GROUP BY contact_id HAVING count(*) > 1)
SELECT student_id FROM p1
GROUP BY student_id
HAVING count(*) = 1
   AND bool_and(coalesce(sms_consent, true) AND mobile_e164 IS NOT NULL
                AND contact_id NOT IN (SELECT contact_id FROM shared))
"""


def textable(school: School) -> set[str]:
    warehouse = Warehouse.from_settings(school.settings())
    return set(warehouse.query(ONE_TEXTABLE_CONTACT)["student_id"].astype(str))


def tick_two(page: Page, frame: Locator, wanted: set[str]) -> list[str]:
    """Tick the first two visible rows of ``frame`` whose pupils are in ``wanted``."""
    rows = grid_rows(frame)[: visible_rows(frame)]
    picks = [i for i, row in enumerate(rows) if row.get("Student ID") in wanted][:2]
    assert len(picks) == 2, f"no two textable pupils among the visible rows: {rows}"
    select_grid_rows(page, frame, picks)
    return [rows[i]["Student ID"] for i in picks]


def from_attendance(page: Page, wanted: set[str]) -> list[str]:
    """Attendance on the sample's day → tick two absent pupils → Message parents."""
    open_page(page, "Attendance")
    set_date(page, "Day", dt.date.fromisoformat(SAMPLE_DATE))
    expect(
        page.get_by_role("heading", name=re.compile("^Absent on Friday 20 November"))
    ).to_be_visible()
    chosen = tick_two(page, dataframe(page), wanted)
    page.get_by_role("button", name="Message parents of 2 pupil(s)").click()
    settle(page)
    expect(page.get_by_role("heading", name="Compose a message")).to_be_visible()
    return chosen


def test_officer_texts_two_families_and_message_history_shows_them_sent(
    signed_in: Callable[[str], Page], school: School
) -> None:
    wanted = textable(school)
    page = signed_in("attendance_officer")
    chosen = from_attendance(page, wanted)
    expect(page.get_by_text("2 pupil(s) chosen")).to_be_visible()
    for student_id in chosen:
        expect(page.get_by_text(f"({student_id})").first).to_be_visible()

    page.get_by_role("radiogroup", name="Channel").get_by_text("SMS", exact=True).click()
    settle(page)
    page.get_by_text("Write the message", exact=True).click()
    settle(page)
    page.get_by_role("textbox", name="Message text").fill(TEXT)
    page.get_by_role("textbox", name="Message text").blur()
    settle(page)
    page.get_by_role("button", name="Preview", exact=True).click()
    settle(page)
    assert not errors(page) and not exceptions(page), errors(page) + exceptions(page)
    assert metric_value(page, "Messages") == "2"
    assert metric_value(page, "Left out") == "0"

    page.get_by_role("button", name="Send", exact=True).click()
    settle(page)
    expect(page.get_by_role("heading", name=re.compile(r"^Batch \d+$"))).to_be_visible()
    assert not errors(page) and not exceptions(page), errors(page) + exceptions(page)

    school.cli("dispatch", "--channel", "sms")
    outbox = school.data_dir / "outbox" / "sms"
    assert outbox.is_dir() and len([p for p in outbox.rglob("*") if p.is_file()]) >= 2
    # The batch's live progress notices the dispatch by itself (no reload).
    expect(page.get_by_text("All 2 message(s) sent.")).to_be_visible(timeout=30_000)

    open_page(page, "Message history")
    log = grid_rows(dataframe(page, near="Select rows to retry"))
    ours = [row for row in log if row.get("Student ID") in chosen]
    assert sorted(row["Student ID"] for row in ours) == sorted(chosen), log
    assert {row["Status"] for row in ours} == {"sent"}, ours
    assert all(row["Channel"] == "sms" for row in ours), ours
    assert not exceptions(page)
