"""Smoke tests of the load test (benchmarks/load_test.py) at a tiny scale.

The real dashboard on the minimal school, three sessions for a few seconds, a load of
its marks and a dispatch of a few SMS: no timing assertions, only that every part runs
against the real server and stores and that what it counts is right.
"""

from __future__ import annotations

import asyncio
import csv
import random
from pathlib import Path

import pytest
from conftest import MINIMAL_SCHOOL, write_extracts
from streamlit.proto.Delta_pb2 import Delta

from benchmarks import load_test as lt
from dashboard.navigation import PAGES
from pipelines.load import load_paths
from schoolcomms.ops import db
from schoolcomms.settings import Settings

TINY = lt.Options(
    sessions=3,
    seconds=4,
    ramp=1,
    think=(0.2, 0.5),
    sms=20,
    baseline_rounds=1,
    baseline_roles=("admin",),
    background_delay=1,
    browser_check=False,  # Chromium comes with `make e2e`, not `make test`
    dashboards=2,  # sessions spread over two processes, as behind a sticky proxy
)


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The minimal school loaded into a data folder (never changed), and its marks file."""
    root = tmp_path_factory.mktemp("loadtest")
    write_extracts(root / "extracts", MINIMAL_SCHOOL)
    report = load_paths([root / "extracts"], Settings(root / "data", env={}))
    assert report.ok, report.summary()
    db.close_all()
    return root / "data", root / "extracts" / "marks.csv"


@pytest.fixture(scope="module")
def result(school: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    pristine, marks = school
    return lt.run(pristine, marks, tmp_path_factory.mktemp("work"), TINY)


def test_every_session_signs_in_and_opens_pages_without_errors(result):
    test = result["test"]
    assert (test["sessions"], test["signed_in"], test["failed_sign_ins"]) == (3, 3, 0)
    assert test["sign_in"]["n"] == 3
    assert test["overall"]["n"] >= 3
    assert test["errors"] == {} and test["new_error_boxes"] == {}
    titles = {p.title for p in PAGES}
    assert set(test["pages"]) <= titles
    assert sum(t["n"] for t in test["pages"].values()) == test["overall"]["n"]
    overall = test["overall"]
    assert 0 < overall["p50"] <= overall["p95"] <= overall["max"]
    # Both processes served sessions (three sessions: two on the first, one on the second).
    by_process = test["server_cpu_seconds_by_process"]
    assert len(by_process) == 2 and all(cpu > 0.05 for cpu in by_process), by_process


def test_the_baseline_opens_every_page_alone(result):
    base = result["baseline"]["pages"]
    assert base["sessions"] == 1 == base["signed_in"]
    assert set(base["pages"]) == {p.title for p in PAGES}  # the administrator sees them all
    assert base["errors"] == {}


def test_the_load_and_the_dispatch_ran_alone_and_during_the_test(result):
    for phase in (result["baseline"], result["test"]):
        assert phase["load"]["returncode"] == 0, phase["load"]["output"]
        assert "generation" in phase["load"]["output"]
        assert phase["dispatch"]["returncode"] == 0, phase["dispatch"]["output"]
        assert phase["dispatch"]["counts"] == {"sent": TINY.sms}
    test = result["test"]
    # "seconds" is rounded to 0.1 s, the ends to 0.01 s.
    assert 0 < test["load"]["start"] < test["load"]["end"] <= test["seconds"] + 0.05
    assert (
        test["during_background"]["n"] + test["outside_background"]["n"] == (test["overall"]["n"])
    )


def test_every_visit_is_written_and_the_figures_print(result):
    with open(result["visits_csv"], newline="", encoding="utf-8") as handle:
        visits = list(csv.DictReader(handle))
    assert {v["kind"] for v in visits} == {"sign_in", "page"}  # no refreshes at this pace
    for phase, figures in (("alone", result["baseline"]["pages"]), ("test", result["test"])):
        pages = [v for v in visits if v["phase"] == phase and v["kind"] == "page"]
        assert len(pages) == figures["overall"]["n"]
    assert "ALL PAGES" in lt.table(result)
    rows = lt.rows(result)
    assert rows[2]["pass"] is True  # no errors
    assert {r["pass"] for r in rows[3:]} == {None}  # load and dispatch exited 0


def test_a_wrong_password_is_a_failed_sign_in(school, tmp_path):
    pristine, _ = school
    data = lt.working_copy(pristine, tmp_path / "data")
    account = lt.create_accounts(data, 1, "wrong")[0]
    wrong = lt.Account(account.email, account.roles, account.staff_id, "not-the-password")

    async def once() -> lt.Phase:
        phase = lt.Phase(sessions=1)
        plan = lt.Plan(random.Random(1))
        await lt.person(0, wrong, dashboard.ws_url, phase, plan, (0, 0), 0)
        return phase

    dashboard = lt.Dashboard(data, tmp_path / "home")
    dashboard.start()
    try:
        phase = asyncio.run(once())
    finally:
        dashboard.stop()
    assert (phase.signed_in, phase.failed_sign_ins) == (0, 1)
    (visit,) = phase.visits
    assert visit.kind == "sign_in" and any("sign-in failed" in e for e in visit.errors)


def test_exception_boxes_and_error_messages_are_counted():
    run = lt.Run()
    boom = Delta()
    boom.new_element.exception.type = "KeyError"
    boom.new_element.exception.message = "'student_id'"
    error = Delta()
    error.new_element.alert.body = "The warehouse is busy."
    error.new_element.alert.format = 1  # ERROR
    info = Delta()
    info.new_element.alert.body = "Nothing to show."
    info.new_element.alert.format = 3  # INFO
    for delta in (boom, error, info):
        lt._read_delta(delta, run)
    assert run.exceptions == ["KeyError: 'student_id'"]
    assert run.error_boxes == ["The warehouse is busy."]


def test_percentiles_are_observed_values_by_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert lt.percentile(values, 95) == 95.0
    assert lt.percentile(values, 50) == 50.0
    assert lt.percentile([3.0], 95) == 3.0
    assert lt.percentile([1.0, 2.0], 95) == 2.0
    visit = lt.Visit(0, "admin", "page", "Home", start=10.0, seconds=2.0, bytes=0)
    assert lt.overlaps(visit, [(11.0, 20.0)])
    assert not lt.overlaps(visit, [(12.5, 20.0)])
