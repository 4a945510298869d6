"""Smoke test of the dashboard page benchmark (benchmarks/pages.py) at a tiny size.

No timing assertions: only that each scenario runs in its own process against a real
data folder and ops store and reports sane figures, that a page which cannot be read is
reported, and that the new-load check sees a second load in the same session.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from benchmarks import pages as bench
from dashboard.navigation import PAGES
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

DAY = dt.date(2026, 9, 3)  # the minimal school's day with registers
ROOT = Path(__file__).resolve().parent.parent


def test_pages_baseline_profile_and_new_load_at_a_tiny_size(loaded: Settings, tmp_path: Path):
    page = "pages/attendance.py"
    rows = bench.run_pages(
        loaded.data_dir, tmp_path / "work", runs=1, reruns=2, day=DAY, pages=[page], profile="all"
    )
    base, imported, attendance, check = rows

    assert base["benchmark"].startswith("baseline") and base["pass"] is None
    assert base["detail"]["runs"][0]["shows"] == "0 metrics, 1 tables (20 rows)"
    assert set(imported["detail"]["by_module"]) == set(bench.PRELOAD)
    assert imported["detail"]["runs"][0]["seconds"] > 0 and imported["pass"] is None
    run = attendance["detail"]["runs"][0]
    assert attendance["detail"]["page"] == page
    assert run["problems"] == []
    assert run["first"] > 0 and run["cold"] > 0 and len(run["reruns"]) == 2
    assert run["server_start"] > run["first"]  # the imports were paid before the page ran
    assert run["first_cpu"] > 0 and run["rerun_cpu"] > 0
    assert attendance["median"].count(" ms") == 2 and attendance["ratio"].count("x") == 2
    assert attendance["pass"] == (run["first"] < 1 and run["rerun"] < 0.3)
    assert run["presets"] == {"attendance_day": DAY.isoformat()}
    assert "Pupils absent 1" in run["shows"]  # S2's O on the day: the page is not empty
    profile = attendance["profile"]
    assert set(profile) == {"first", "rerun"}
    # The server preloaded the modules, so the first run imports little.
    assert profile["first"]["imports"] < profile["first"]["seconds"] / 2
    assert any(name.startswith("dashboard/") for name, _, _ in profile["rerun"]["project"])

    new = check["detail"]
    assert (new["before"], new["after"], new["pupils"]) == (1, 2, 1)  # S1 marked O
    assert (new["generation_before"], new["generation_after"]) == (1, 2)
    assert new["problems"] == [] and check["pass"] is True
    # The second load went to a copy: the benchmark's data folder is unchanged.
    assert Warehouse.from_settings(loaded).generation() == 1


def test_a_page_the_account_may_not_open_is_reported_as_a_problem(loaded: Settings):
    from schoolcomms import auth
    from schoolcomms.ops.db import open_ops

    session_key = bench.admin_session(loaded.data_dir)["session_key"]
    teacher = auth.create_user(
        open_ops(loaded), email="teacher@school.example.org", roles=["teacher"], actor="test"
    )
    args = {"page": "pages/users.py", "reruns": 1, "day": DAY.isoformat()}
    result = bench.run_scenario(
        "page", loaded.data_dir, user_id=teacher, session_key=session_key, **args
    )
    assert any("cannot open this page" in p for p in result["problems"])
    entry = next(p for p in PAGES if p.path == "pages/users.py")
    times = {f"{m}{cpu}": 0.01 for m in bench.MEASURES for cpu in ("", "_cpu")}
    row = bench.page_row(entry, {**times, "runs": [result]}, times)
    assert row["pass"] is False and "PROBLEMS:" in row["baseline"]


def test_presets_name_real_pages_and_their_widget_keys():
    paths = {p.path for p in PAGES}
    for path, values in bench.presets(DAY).items():
        assert path in paths
        source = (ROOT / "dashboard" / path).read_text()
        for key in values:
            assert f'"{key}"' in source, f"{path} has no widget key {key}"
