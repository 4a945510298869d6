"""Every page of the navigation, opened by an admin in the browser: no traceback, a screenshot.

The pages come from :data:`dashboard.navigation.PAGES` at run time, so a page added
later is visited (and photographed) too. Screenshots go to ``docs/screenshots/<key>.png``
(pictures of pages no longer in the navigation are removed) and are shown in the README.
This file runs after the flows, so the pages show their messages, loads and requests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from playwright.sync_api import Page

from dashboard.navigation import PAGES, permitted_pages

from .conftest import SAMPLE_DATE, SCREENSHOTS
from .streamlit_ui import exceptions, nav_titles, open_page, screenshot, set_date

DAY_PICKER = "Day"  # pages with a day to look at show the sample's school day


def test_every_page_opens_without_a_traceback_and_is_photographed(
    signed_in: Callable[[str], Page],
) -> None:
    page = signed_in("admin")
    expected = [p.title for p in permitted_pages(["admin"])]
    assert expected == [p.title for p in PAGES], "an admin may open every page"
    shown = nav_titles(page)  # grouped by section, so not necessarily in PAGES order
    assert sorted(shown) == sorted(expected)

    problems: dict[str, list[str]] = {}
    for entry in PAGES:
        open_page(page, entry.title)
        if page.get_by_role("spinbutton", name=f"day, {DAY_PICKER}").count() == 1:
            set_date(page, DAY_PICKER, dt.date.fromisoformat(SAMPLE_DATE))
        if found := exceptions(page):
            problems[entry.key] = found
        path = SCREENSHOTS / f"{entry.key}.png"
        screenshot(page, path)
        assert path.stat().st_size > 10_000, f"{path} looks blank"
    assert not problems, f"pages that show a traceback: {problems}"

    keys = {entry.key for entry in PAGES}
    for stale in SCREENSHOTS.glob("*.png"):
        if stale.stem not in keys:
            stale.unlink()
