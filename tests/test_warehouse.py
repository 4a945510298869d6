"""Warehouse snapshots: generations, CURRENT, lock, rollback, pruning, readers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from schoolcomms.warehouse import Busy, NoWarehouse, ReadOnlyQuery, Warehouse, WarehouseError


def build(warehouse: Warehouse, value: int) -> int:
    """Publish a generation whose table t holds one row with ``value``."""
    with warehouse.write_lock():
        con = warehouse.staging_connection()
        try:
            with warehouse.next_generation(con) as number:
                con.execute("CREATE OR REPLACE TABLE new.t (v INTEGER)")
                con.execute("DELETE FROM new.t")
                con.execute("INSERT INTO new.t VALUES (?)", [value])
        finally:
            con.close()
    return number


def value_of(warehouse: Warehouse) -> int:
    return int(warehouse.query("SELECT v FROM t")["v"].iloc[0])


def test_empty_warehouse_says_what_to_do(tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    assert warehouse.generation() is None
    with pytest.raises(NoWarehouse, match="schoolcomms load"):
        warehouse.query("SELECT 1")


def test_each_build_is_a_new_generation_and_readers_follow(tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    assert build(warehouse, 10) == 1
    reader = Warehouse(tmp_path / "wh")  # e.g. the dashboard, already running
    assert value_of(reader) == 10
    assert build(warehouse, 20) == 2
    assert reader.generation() == 2 and value_of(reader) == 20
    assert (tmp_path / "wh" / "CURRENT").read_text().strip() == "2"


def test_failed_build_changes_nothing(tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    build(warehouse, 1)
    with warehouse.write_lock():
        con = warehouse.staging_connection()
        with pytest.raises(RuntimeError), warehouse.next_generation(con):
            con.execute("INSERT INTO new.t VALUES (99)")
            raise RuntimeError("validation failed half way")
        con.close()
    assert warehouse.generation() == 1 and value_of(warehouse) == 1
    assert warehouse.generations() == [1]
    assert not list((tmp_path / "wh").glob("*.building*"))


def test_rollback_and_prune(tmp_path):
    warehouse = Warehouse(tmp_path / "wh", keep=3)
    for value in range(1, 6):
        build(warehouse, value)
    assert warehouse.generations() == [3, 4, 5]
    assert warehouse.rollback() == (5, 4)
    assert value_of(warehouse) == 4
    assert warehouse.rollback() == (4, 3)
    with pytest.raises(WarehouseError, match="oldest one kept"):
        warehouse.rollback()
    # A load after a rollback builds on the rolled-back data, with a new number.
    assert build(warehouse, 6) == 6 and value_of(warehouse) == 6


def test_queries_are_read_only_and_cannot_read_files(tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    build(warehouse, 1)
    with pytest.raises(ReadOnlyQuery):
        warehouse.query("DELETE FROM t")
    with pytest.raises(Exception, match="disabled by configuration"):
        warehouse.query("SELECT * FROM read_csv('/etc/hostname')")
    columns, rows = warehouse.rows("SELECT v, DATE '2026-09-03' AS d FROM t")
    assert columns == ["v", "d"] and rows[0][1].isoformat() == "2026-09-03"


def test_second_loader_is_refused_while_lock_held(tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    with (
        warehouse.write_lock(),
        pytest.raises(Busy, match="Another load is running"),
        Warehouse(tmp_path / "wh").write_lock(),
    ):
        pass


def test_current_pointing_at_missing_file_says_how_to_recover(tmp_path):
    warehouse = Warehouse(tmp_path / "wh")
    build(warehouse, 1)
    (tmp_path / "wh" / "CURRENT").write_text("7\n")
    with pytest.raises(WarehouseError, match="rollback"):
        warehouse.generation()


def _slow_build(root: str) -> None:
    warehouse = Warehouse(root)
    with warehouse.write_lock():
        con = warehouse.staging_connection()
        with warehouse.next_generation(con):
            con.execute("CREATE OR REPLACE TABLE new.t AS SELECT range AS v FROM range(3000000)")
            time.sleep(30)


def test_killed_loader_leaves_current_complete(tmp_path):
    root = tmp_path / "wh"
    warehouse = Warehouse(root)
    build(warehouse, 42)
    process = multiprocessing.get_context("spawn").Process(target=_slow_build, args=(str(root),))
    process.start()
    deadline = time.time() + 120  # a busy machine can take long to start Python
    while not list(root.glob("*.building")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(root.glob("*.building")), "the loader never started building"
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    reader = Warehouse(root)
    assert reader.generation() == 1 and value_of(reader) == 42
    # The next load cleans up the half-built file and succeeds.
    assert build(reader, 43) == 2 and value_of(reader) == 43
    assert not list(root.glob("*.building*"))
