"""Smoke tests of the scheduler benchmarks (benchmarks/scheduler.py) at a tiny size.

No timing assertions: only that each scenario runs against real stores and returns sane
figures, and that the baseline planner agrees with ``plan_at`` text for text.
"""

from __future__ import annotations

import datetime as dt

import pytest

from benchmarks import scheduler as bench
from scheduler.jobs import build_jobs
from schoolcomms.settings import Settings

STUDENTS = 400


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(bench.absence_warehouse(tmp_path_factory.mktemp("absence"), STUDENTS))


def test_the_warehouse_has_one_day_of_five_marks_a_student_and_weeks_before(data_dir):
    settings, warehouse, _ = bench._open(data_dir)
    figures = bench.day_figures(warehouse)
    assert figures["students"] == STUDENTS
    assert figures["marks_today"] == 5 * STUDENTS
    assert figures["marks"] == (bench.HISTORY_DAYS + 1) * 5 * STUDENTS
    assert 0 < figures["o_today"] < figures["marks_today"] * 0.05
    links = warehouse.query("SELECT count(DISTINCT student_id) AS n FROM portal_links")
    assert links["n"][0] == STUDENTS * 8 // 10


def test_plan_and_the_naive_baseline_agree(data_dir):
    result = bench.plan(data_dir, "2")
    naive = bench.plan_naive(data_dir)
    assert result["texts"] > 0
    assert result["students_texted"] <= result["texts"] <= 2 * result["students_texted"]
    assert result["students_texted"] <= result["candidates"]
    assert len(result["warm_seconds"]) == 2
    timed = [result["cold_seconds"], result["reopen_seconds"], *result["parts"].values()]
    assert all(s > 0 for s in timed)
    assert set(result["parts"]) == {"first_absences", "portal_accounts", "notified_today", "plan"}
    assert (naive["texts"], naive["digest"]) == (result["texts"], result["digest"])
    assert naive["seconds"] > 0 and result["peak_mb"] > 0


@pytest.mark.parametrize("clock", ["10:19", "10:20", "11:40", "17:00", "18:01"])
def test_the_baseline_follows_the_rule_at_other_times(data_dir, clock):
    from senders.absence import plan_at

    settings, warehouse, engine = bench._open(data_dir)
    at = dt.datetime.combine(bench.DAY, dt.time.fromisoformat(clock))
    ours = plan_at(settings, warehouse, engine, at)
    assert bench.naive_plan(settings, warehouse, engine, at) == ours
    if clock in ("10:19", "18:01"):  # before the first lesson's texts are due; too late
        assert ours == []
    if clock == "17:00":
        assert ours


def test_idle_tick_starts_nothing_and_measures_every_iteration(tmp_path):
    result = bench.idle_tick(str(tmp_path / "tick"), "50")
    assert result["iterations"] == 50
    assert result["started"] == 0
    assert result["jobs"] == len(build_jobs(Settings(tmp_path / "tick", env={})))
    assert 0 < result["seconds"] <= result["p99_seconds"] <= result["max_seconds"]
    assert result["prepare_seconds"] > 0


def test_idle_schedule_baseline(tmp_path):
    result = bench.idle_schedule("4", "50")
    assert (result["iterations"], result["jobs"], result["started"]) == (50, 4, 0)
    assert 0 < result["seconds"] <= result["max_seconds"]


def test_the_group_runs_in_fresh_processes_and_prints_the_curve(tmp_path, capsys):
    rows = bench.bench(tmp_path / "cache", runs=1, sizes=(200,), iterations=20, alerts=False)
    printed = capsys.readouterr().out
    assert "students" in printed.splitlines()[0] and "200" in printed.splitlines()[1]
    plan_row, tick_row, start_row = rows
    assert plan_row["benchmark"].startswith("absence texts: plan_at, 200 students")
    assert "same texts: yes" in plan_row["baseline"] and plan_row["pass"] is True
    point = plan_row["detail"]["point"]
    assert point["marks_today"] == 1000 and point["same_texts"] and point["ratio"] > 0
    assert tick_row["target"] == "< 50 ms" and "jobs started: 0" in tick_row["baseline"]
    assert start_row["pass"] is None
    assert all(r["median"] for r in rows)


def test_alert_evaluation_is_wired_to_benchmarks_alerts(tmp_path):
    (row,) = bench.alerts_rows(tmp_path, runs=1, size="school")
    assert (
        row["benchmark"].startswith("alerts: plan_alerts") and "sample school" in row["benchmark"]
    )
    (result,) = row["detail"]
    assert result["students"] > 1000 and result["rules"] > 0
    assert row["pass"] == (result["median_seconds"] < 2.0)
    assert bench.alerts_sample(tmp_path, "school") == tmp_path / "alerts-school"  # kept
