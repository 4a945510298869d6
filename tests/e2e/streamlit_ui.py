"""Driving the Streamlit dashboard in a real browser: settle, sign in, navigate, read.

Streamlit renders each ``st.dataframe`` as a canvas grid (glide-data-grid); the grid
keeps an accessible ``<table role="grid">`` of the rows it draws, which is what
:func:`grid_rows` reads, and row selection is a click on the row-marker column of the
canvas (:func:`select_grid_rows`).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from playwright.sync_api import Locator, Page

TIMEOUT_MS = 60_000
ROW_HEIGHT = 35  # Streamlit's default st.dataframe row (and header) height, in px
MARKER_X = 15  # the middle of the row-marker (checkbox) column, in px from the left
RUNNING = '[data-testid="stStatusWidget"]'


def settle(page: Page, timeout: int = TIMEOUT_MS) -> None:
    """Wait until the app is drawn and no script run is in progress (twice, to be sure).

    The status widget ("Running…") appears while a run is in progress; a rerun may
    start just after one finishes, so the check is repeated after a short pause.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    for _ in range(2):
        page.wait_for_timeout(400)
        page.wait_for_selector(RUNNING, state="detached", timeout=timeout)
    skeletons = page.locator('[data-testid="stSkeleton"]')
    if skeletons.count():
        skeletons.first.wait_for(state="detached", timeout=timeout)


def sign_in(page: Page, url: str, email: str, password: str) -> None:
    """Open the dashboard and sign in with a local account; waits for the navigation."""
    page.goto(url)
    settle(page)
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=TIMEOUT_MS)
    settle(page)


def nav_titles(page: Page) -> list[str]:
    """The page titles the navigation shows the signed-in account (all of them)."""
    expand_navigation(page)
    labels = page.locator(
        '[data-testid="stSidebarNav"] [data-testid="stSidebarNavLink"] '
        '[data-testid="stMarkdownContainer"]'
    )
    return [text.strip() for text in labels.all_inner_texts()]


def expand_navigation(page: Page) -> None:
    """Press "View N more" when the navigation is folded, so every page link shows."""
    more = page.locator('[data-testid="stSidebarNav"]').get_by_role(
        "button", name=re.compile(r"^View \d+ more$")
    )
    if more.count():
        more.first.click()


def open_page(page: Page, title: str) -> None:
    """Open a page of the app by its navigation title, in this browser session."""
    expand_navigation(page)
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_role("link", name=title, exact=True).click()
    page.wait_for_function(
        """title => [...document.querySelectorAll('[data-testid="stSidebarNavLink"]')]
            .some(a => a.getAttribute('aria-current') === 'page'
                       && a.querySelector('[data-testid="stMarkdownContainer"]')
                           .innerText.trim() === title)""",
        arg=title,
        timeout=TIMEOUT_MS,
    )
    settle(page)


def exceptions(page: Page) -> list[str]:
    """The text of every exception box (a traceback shown to the user) on the page."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def errors(page: Page) -> list[str]:
    """The text of every error message box (``st.error``) on the page."""
    return page.locator('[data-testid="stAlertContentError"]').all_inner_texts()


def metric_value(page: Page, label: str) -> str:
    """The shown value of the ``st.metric`` with this label."""
    metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)
    )
    return metric.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def dataframe(page: Page, nth: int = 0, near: str | None = None) -> Locator:
    """The ``nth`` dataframe on the page, or the first one after the text ``near``."""
    frames = page.locator('[data-testid="stDataFrame"]')
    if near is None:
        return frames.nth(nth)
    return page.get_by_text(near, exact=False).first.locator(
        "xpath=following::*[@data-testid='stDataFrame'][1]"
    )


def grid_rows(frame: Locator) -> list[dict[str, str]]:
    """The rows a dataframe draws now, as {column header: cell text} (visible rows only)."""
    frame.locator('table[role="grid"]').wait_for(state="attached", timeout=TIMEOUT_MS)
    return frame.evaluate(
        """el => {
            const table = el.querySelector('table[role="grid"]');
            const heads = [...table.querySelectorAll('thead th')].map(th => th.innerText.trim());
            return [...table.querySelectorAll('tbody tr')].map(tr => {
                const row = {};
                tr.querySelectorAll('td').forEach((td, i) => {
                    row[heads[i] ?? String(i)] = td.innerText.trim();
                });
                return row;
            });
        }"""
    )


def visible_rows(frame: Locator) -> int:
    """How many body rows of a dataframe fit in its box (the ones that can be clicked)."""
    box = frame.locator('[data-testid="stDataFrameResizable"]').bounding_box()
    assert box is not None, "the dataframe is not on screen"
    return max(0, int(box["height"]) // ROW_HEIGHT - 1)


def select_grid_rows(page: Page, frame: Locator, rows: list[int]) -> None:
    """Tick the row-marker checkboxes of these (visible, 0-based) rows of a dataframe."""
    frame.scroll_into_view_if_needed()
    box = frame.locator('[data-testid="stDataFrameResizable"]').bounding_box()
    assert box is not None, "the dataframe is not on screen"
    for row in rows:
        y = box["y"] + ROW_HEIGHT * (row + 1) + ROW_HEIGHT // 2
        assert y < box["y"] + box["height"], f"row {row} is not visible in the grid"
        page.mouse.click(box["x"] + MARKER_X, y)
        settle(page)


def set_date(page: Page, label: str, day: dt.date) -> None:
    """Choose a date in the ``st.date_input`` with this label, as a person would.

    Typing into the day, month and year segments moves the calendar to that month;
    a click on the day in the calendar then chooses it.
    """
    page.get_by_role("spinbutton", name=f"day, {label}").click()
    page.keyboard.type(f"{day:%d%m%Y}")
    page.get_by_role("button", name=f"{day:%A, %B} {day.day}, {day.year}").click()
    settle(page)


def upload(page: Page, label: str, files: list[Path]) -> None:
    """Choose files in the ``st.file_uploader`` with this label (replacing any chosen)."""
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=label).first
    remove = uploader.locator('[data-testid="stFileChipDeleteBtn"] button')
    while remove.count():
        remove.first.click()
        settle(page)
    uploader.locator('input[type="file"]').set_input_files([str(f) for f in files])
    for f in files:
        uploader.locator('[data-testid="stFileChipName"]', has_text=f.name).wait_for(
            timeout=TIMEOUT_MS
        )
    settle(page)


def screenshot(page: Page, path: Path, width: int = 1400) -> None:
    """Save the whole page (not just the window) as a PNG ``width`` pixels wide.

    Streamlit scrolls inside its own container, so the window is made as tall as the
    content before the shot, then put back.
    """
    before = page.viewport_size or {"width": width, "height": 900}
    height = page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]')
                || document.querySelector('[data-testid="stAppViewContainer"]');
            const side = document.querySelector('[data-testid="stSidebarContent"]');
            return Math.max(main ? main.scrollHeight : 0, side ? side.scrollHeight : 0,
                            document.body.scrollHeight);
        }"""
    )
    page.set_viewport_size({"width": width, "height": max(600, min(int(height), 12_000))})
    # No focus ring or hover tooltip in the picture.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(width - 5, 5)
    settle(page)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    page.set_viewport_size(before)
