"""A teacher asks for help; the office sees it live on Home and acknowledges it.

Two browsers at once: the office user has Home open; the teacher presses "Request
assistance" on their own Home → the request appears on the office screen without a
reload (a live fragment) → Acknowledge → the teacher's screen says who acknowledged it,
again without a reload.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .streamlit_ui import errors, exceptions, settle

LIVE_TIMEOUT_MS = 30_000  # the fragments poll every few seconds


def test_assistance_request_reaches_the_office_live_and_is_acknowledged(
    signed_in: Callable[[str], Page],
) -> None:
    office = signed_in("office")
    expect(office.get_by_role("heading", name="Sample School")).to_be_visible()
    location = "Room E2E-7"
    # The live request (an error box), not the office notice about it in the list below.
    alert = office.locator(
        '[data-testid="stAlertContentError"]', has_text=f"Assistance needed: {location}"
    )
    expect(alert).to_have_count(0)

    teacher = signed_in("teacher")
    teacher.get_by_role("button", name=re.compile("Request assistance")).click()
    teacher.get_by_label("Where are you?").fill(location)
    teacher.get_by_label("What is needed? (optional)").fill("A pupil has fainted.")
    teacher.get_by_role("button", name="Send to the office").click()
    settle(teacher)
    expect(teacher.get_by_text(f"Your request for help at {location} has gone")).to_be_visible()
    assert not errors(teacher) and not exceptions(teacher)

    # The office page was not touched: the live fragment brings the request in.
    expect(alert).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(office.get_by_text("A pupil has fainted.")).to_be_visible()
    # The Acknowledge button of this request: in the nearest block around its text.
    request = alert.locator("xpath=ancestor::*[.//button[contains(., 'Acknowledge')]][1]")
    request.get_by_role("button", name=re.compile("Acknowledge")).click()
    settle(office)
    expect(office.get_by_text(f"Acknowledged: help for {location} is on the way.")).to_be_visible()
    expect(alert).to_have_count(0)
    assert not exceptions(office)

    expect(teacher.get_by_text(re.compile(f"at {location} .* was acknowledged by"))).to_be_visible(
        timeout=LIVE_TIMEOUT_MS
    )
