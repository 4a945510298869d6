"""End-to-end fixtures: a sample school, its accounts, the real dashboard, headless Chromium.

One session: a fresh data directory with the deterministic sample school loaded
(``schoolcomms sample --size school --date 2026-11-20 --load``), an account per role
with a known password, the real dashboard (``streamlit run dashboard/app.py``) as a
subprocess with a clean environment, HOME and working directory (so no developer
settings or secrets are read), and Debian's Chromium driven by Playwright. Run with
``make e2e``; ``make test`` leaves this folder out.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from schoolcomms import auth
from schoolcomms.ops.db import open_ops
from schoolcomms.settings import Settings

from .streamlit_ui import sign_in

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = Path(os.environ.get("SCHOOLCOMMS_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SAMPLE_DATE = "2026-11-20"  # a Friday: a full school day of history
PASSWORD = "e2e-correct-horse-battery"
VIEWPORT = {"width": 1400, "height": 900}
START_TIMEOUT = 90  # seconds for the dashboard to answer


@dataclass(frozen=True)
class Account:
    """A dashboard account the tests sign in with."""

    email: str
    name: str
    roles: tuple[str, ...]
    staff_id: str | None = None


@dataclass(frozen=True)
class School:
    """The session's data directory, its accounts and what the sample holds."""

    data_dir: Path
    home: Path
    accounts: dict[str, Account]
    sample: Path

    def env(self) -> dict[str, str]:
        """A clean environment for the app's processes: nothing of the developer's."""
        return {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TZ": "Europe/London",
            "PYTHONPATH": str(ROOT),
            "SCHOOLCOMMS_DATA_DIR": str(self.data_dir),
        }

    def settings(self) -> Settings:
        """The data directory's settings, with no environment and no secrets file."""
        return Settings(self.data_dir, env={}, secrets_file=self.home / "no-secrets.toml")

    def cli(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        """Run ``schoolcomms --data-dir <data> <args>`` as a subprocess; fail on a non-zero exit."""
        result = subprocess.run(
            [sys.executable, "-m", "schoolcomms", "--data-dir", str(self.data_dir), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (
            f"schoolcomms {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
        return result


def _staff_ids(sample: Path, n: int) -> list[str]:
    with (sample / "staff.csv").open(newline="", encoding="utf-8") as handle:
        return [row["staff_id"] for row in csv.DictReader(handle)][:n]


def _create_accounts(school: School) -> None:
    engine = open_ops(school.settings())
    try:
        for account in school.accounts.values():
            auth.create_user(
                engine,
                email=account.email,
                roles=list(account.roles),
                actor="e2e",
                name=account.name,
                staff_id=account.staff_id,
            )
            auth.reset_password(engine, account.email, "e2e", password=PASSWORD)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def school(tmp_path_factory: pytest.TempPathFactory) -> School:
    """The sample school loaded into a fresh data directory, with an account per role."""
    base = tmp_path_factory.mktemp("e2e")
    home = base / "home"
    home.mkdir()
    data = base / "data"
    sample = data / "sample"
    bare = School(data, home, {}, sample)
    bare.cli("sample", "--size", "school", "--date", SAMPLE_DATE, "--out", str(sample), "--load")
    officer, teacher = _staff_ids(sample, 2)
    accounts = {
        "admin": Account("admin@e2e.example.com", "Ada Admin", ("admin",)),
        "attendance_officer": Account(
            "officer@e2e.example.com", "Owen Officer", ("attendance_officer",), officer
        ),
        "data_manager": Account("data@e2e.example.com", "Dana Data", ("data_manager",)),
        "office": Account("office@e2e.example.com", "Olive Office", ("office",)),
        "teacher": Account("teacher@e2e.example.com", "Tess Teacher", ("teacher",), teacher),
    }
    school = School(data, home, accounts, sample)
    _create_accounts(school)
    return school


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"The dashboard exited with {process.returncode} before answering:\n"
                + log.read_text(errors="replace")
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(
        f"The dashboard did not answer within {START_TIMEOUT} s:\n"
        + log.read_text(errors="replace")
    )


@pytest.fixture(scope="session")
def dashboard(school: School) -> Iterator[str]:
    """The real dashboard on a free local port; its URL. Stopped after the session."""
    port = _free_port()
    log = school.home / "dashboard.log"
    command = [
        sys.executable,
        "-m",
        "schoolcomms",
        # What is deployed (deploy/schoolcomms-dashboard.service): the libraries and
        # page helpers imported before the server starts.
        "dashboard",
        "--address",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=school.home, env=school.env(), stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `sudo scripts/install_chromium.sh` "
            "(or `make e2e`, which does) and try again.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Remember each phase's outcome on the test, so fixtures can tell a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def signed_in(
    request: pytest.FixtureRequest,
    browser: Browser,
    dashboard: str,
    school: School,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], Page]]:
    """``signed_in(role)``: a new browser context signed in as that role's account.

    Each call is a separate browser (separate cookies, separate Streamlit session). On
    a failure every page is saved as a screenshot and the path printed.
    """
    contexts: list[tuple[str, BrowserContext, Page]] = []

    def open_as(role: str) -> Page:
        context = browser.new_context(viewport=VIEWPORT, timezone_id="Europe/London")
        context.set_default_timeout(60_000)
        page = context.new_page()
        contexts.append((role, context, page))
        sign_in(page, dashboard, school.accounts[role].email, PASSWORD)
        return page

    yield open_as
    report = getattr(request.node, "report_call", None)
    failed = report is not None and report.failed
    folder = tmp_path_factory.getbasetemp() / "failures"
    for role, context, page in contexts:
        if failed:
            folder.mkdir(exist_ok=True)
            path = folder / f"{request.node.name}-{role}.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"Screenshot of the failure ({role}): {path}")
        context.close()
