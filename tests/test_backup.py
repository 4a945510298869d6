"""`schoolcomms backup` and `restore`: back up, destroy, restore, compare.

A real installation (the minimal school loaded twice, messages queued and sent, a
letter batch, templates, alert rules, report schedules, users, settings.toml) is
backed up through the CLI, its data directory deleted, and the backup restored; then
every ops store table is compared row by row and every warehouse table of the current
generation is read back in a fresh process and compared. Damaged backups, a newer
schema, a non-empty target and a running scheduler are refused in words, changing
nothing; an older ops store is migrated forward.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import minimal_school, write_extracts

from schoolcomms import backup as backup_module
from schoolcomms.ops import db
from schoolcomms.ops.db import head_revision, open_ops, session_scope

DUMP_WAREHOUSE = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
names = [r[0] for r in con.execute(
    "SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
print(json.dumps({n: [[str(v) for v in row] for row in
    con.execute(f'SELECT * FROM "{n}" ORDER BY ALL').fetchall()] for n in names}))
"""


def ops_tables(path: Path) -> dict[str, list[tuple]]:
    """Every table of a SQLite ops store, every row, in rowid order."""
    con = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        order = {n: "rowid" if n != "alembic_version" else "version_num" for n in names}
        return {
            n: con.execute(f'SELECT * FROM "{n}" ORDER BY {order[n]}').fetchall() for n in names
        }
    finally:
        con.close()


def warehouse_tables(data_dir: Path) -> tuple[int, dict[str, list[list[str]]]]:
    """The current generation and all its tables, read by a fresh process."""
    generation = int((data_dir / "warehouse" / "CURRENT").read_text())
    path = data_dir / "warehouse" / f"{generation:06d}.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", DUMP_WAREHOUSE, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return generation, json.loads(done.stdout)


@pytest.fixture
def installation(loaded, cli, settings, tmp_path):
    """The minimal school with a week's worth of everything the ops store holds."""
    from scheduler import runs
    from schoolcomms import auth
    from schoolcomms.ops.models import utcnow
    from senders.alerts.rules import seed_default_rules
    from senders.bank import seed_default_templates
    from senders.report_schedules import seed_default_schedules

    before = settings.settings_file.read_text() if settings.settings_file.exists() else ""
    settings.settings_file.write_text(
        f'{before}school_name = "Restore Academy"\nfreshness_minutes = 45\n'
    )
    contacts = minimal_school()["contacts"]
    contacts[0].update(address_line1="1 High Street", town="Leeds", postcode="LS1 1AA")
    write_extracts(tmp_path / "update", {"contacts": contacts})
    assert cli("load", tmp_path / "update").exit_code == 0  # generation 2
    engine = open_ops(settings)
    assert seed_default_templates(engine) and seed_default_rules(engine)
    seed_default_schedules(engine, settings)
    auth.create_user(
        engine, email="a.officer@school.example.org", roles=["attendance_officer"], actor="test"
    )
    sms = cli(
        "send", "--channel", "sms", "--students", "S1,S2", "--body", "Hello {{ contact.name }}"
    )
    assert sms.exit_code == 0, sms.output
    letter = cli("send", "--channel", "letter", "--students", "S1", "--body", "Well done.")
    assert letter.exit_code == 0, letter.output
    assert cli("dispatch").exit_code == 0
    queued = cli(
        "send",
        "--channel",
        "email",
        "--students",
        "S1",
        "--body",
        "Still queued",
        "--subject",
        "Hi",
    )
    assert queued.exit_code == 0, queued.output
    run_id = runs.start_run(engine, "alerts", utcnow().replace(microsecond=0), utcnow(), "test")
    runs.finish_run(engine, run_id, "ok", utcnow(), counts={"notices": 0})
    db.close_all()
    return settings


def test_back_up_destroy_restore_compare(installation, cli, tmp_path):
    data = installation.data_dir
    before_ops = ops_tables(data / "ops.sqlite")
    before_generation, before_warehouse = warehouse_tables(data)
    settings_text = installation.settings_file.read_bytes()
    letters = {p.name: p.read_bytes() for p in (data / "letters").iterdir()}
    assert before_generation == 2 and letters
    statuses = {
        row[0]
        for row in sqlite3.connect(data / "ops.sqlite").execute("SELECT status FROM messages")
    }
    assert {"sent", "queued"} <= statuses
    assert all(before_ops[t] for t in ("messages", "templates", "alert_rules", "users", "batches"))

    dest = tmp_path / "backups" / "nightly"
    result = cli("backup", dest)
    assert result.exit_code == 0, result.output
    assert "warehouse generation 2" in result.output
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["ops_revision"] == head_revision()
    assert {f["path"] for f in manifest["files"]} >= {
        "ops.sqlite",
        "warehouse/000002.duckdb",
        "warehouse/CURRENT",
        "settings.toml",
        *(f"letters/{name}" for name in letters),
    }
    assert not (dest / "warehouse" / "000001.duckdb").exists()  # the current generation only
    assert oct(dest.stat().st_mode & 0o777) == "0o700"

    shutil.rmtree(data)  # the disaster
    result = cli("restore", dest)
    assert result.exit_code == 0, result.output + result.stderr

    after_ops = ops_tables(data / "ops.sqlite")
    assert set(after_ops) == set(before_ops)
    for table, rows in before_ops.items():
        if table == "audit_log":
            assert after_ops[table][: len(rows)] == rows
            (extra,) = after_ops[table][len(rows) :]
            assert "backup.restore" in extra and str(dest) in extra
        else:
            assert after_ops[table] == rows, f"table {table} differs after restore"
    assert warehouse_tables(data) == (before_generation, before_warehouse)
    assert installation.settings_file.read_bytes() == settings_text
    assert {p.name: p.read_bytes() for p in (data / "letters").iterdir()} == letters
    # The restored installation works: the CLI reads both stores.
    assert cli.query("SELECT count(*) AS n FROM students") == [{"n": 3}]
    assert len(json.loads(cli("messages", "--json").stdout)) == len(before_ops["messages"])


@pytest.mark.parametrize("victim", ["ops.sqlite", "warehouse/000002.duckdb", "settings.toml"])
def test_a_flipped_byte_is_refused_and_nothing_changes(installation, cli, tmp_path, victim):
    dest = tmp_path / "backup"
    assert cli("backup", dest).exit_code == 0
    path = dest / victim
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    shutil.rmtree(installation.data_dir)

    result = cli("restore", dest)
    assert result.exit_code == 2
    assert f"{victim} does not match its checksum" in result.stderr
    assert "Nothing was restored" in result.stderr and "Traceback" not in result.output
    assert not installation.data_dir.exists()
    verify = cli("restore", dest, "--verify-only")
    assert verify.exit_code == 2 and "damaged" in verify.stderr


def test_missing_files_and_a_damaged_manifest_are_refused(installation, cli, tmp_path):
    dest = tmp_path / "backup"
    assert cli("backup", dest).exit_code == 0
    (dest / "settings.toml").unlink()
    result = cli("restore", dest, "--verify-only")
    assert result.exit_code == 2 and "settings.toml is missing" in result.stderr
    # A file outside what a backup holds (here: into the drop folder) is refused.
    (dest / "drop").mkdir()
    (dest / "drop" / "students.csv").write_text("student_id\nX\n")
    manifest = backup_module.read_manifest(dest)
    backup_module.seal(dest, manifest)
    result = cli("restore", dest)
    assert result.exit_code == 2 and "drop/students.csv is not a file a backup holds" in (
        result.stderr
    )
    assert not (installation.data_dir / "drop").exists()
    (dest / "manifest.json").write_text('{"format": "schoolcomms-backup", "files": [')
    result = cli("restore", dest)
    assert result.exit_code == 2 and "manifest of the backup" in result.stderr
    result = cli("restore", tmp_path)
    assert result.exit_code == 2 and "is not a schoolcomms backup" in result.stderr


def test_a_newer_schema_is_refused(installation, cli, tmp_path):
    dest = tmp_path / "backup"
    assert cli("backup", dest).exit_code == 0
    con = sqlite3.connect(dest / "ops.sqlite")
    con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.commit()
    con.close()
    manifest = backup_module.read_manifest(dest)
    manifest.ops_revision = "9999"
    backup_module.seal(dest, manifest)  # a sound backup, from a future version
    shutil.rmtree(installation.data_dir)

    result = cli("restore", dest)
    assert result.exit_code == 2
    assert "schema revision 9999, newer than this version of schoolcomms knows" in result.stderr
    assert "Upgrade schoolcomms" in result.stderr
    assert not installation.data_dir.exists()


def test_an_older_ops_store_is_migrated_forward(settings, cli, tmp_path):
    from alembic import command

    engine = db.make_engine(settings.resolved_ops_url)
    config = db.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
    conn_raw = sqlite3.connect(settings.data_dir / "ops.sqlite")
    conn_raw.execute(
        "INSERT INTO audit_log (at, actor, action, target) VALUES "
        "('2026-01-05 09:00:00.000000', 'old', 'settings.change', 'school_name')"
    )
    conn_raw.commit()
    conn_raw.close()
    engine.dispose()

    dest = tmp_path / "backup"
    result = cli("backup", dest)
    assert result.exit_code == 0, result.output
    assert "no warehouse" in result.output and "schema 0007" in result.output
    other = tmp_path / "elsewhere"
    result = cli("--data-dir", other, "restore", dest, "--json")
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads(result.stdout)
    assert report["revision_in_backup"] == "0007"
    assert report["revision_now"] == head_revision()
    rows = ops_tables(other / "ops.sqlite")["audit_log"]
    assert [r[2:4] for r in rows] == [
        ("old", "settings.change"),
        ("cli:" + _user(), "backup.restore"),
    ]


def _user() -> str:
    import getpass

    return getpass.getuser()


def test_a_non_empty_target_needs_force_and_keeps_what_it_replaces(installation, cli, tmp_path):
    data = installation.data_dir
    dest = tmp_path / "backup"
    assert cli("backup", dest).exit_code == 0
    original = ops_tables(data / "ops.sqlite")["templates"]
    con = sqlite3.connect(data / "ops.sqlite")
    con.execute("DELETE FROM alert_firings")
    con.execute("DELETE FROM alert_rules")
    con.commit()
    con.close()

    result = cli("restore", dest)
    assert result.exit_code == 2 and "already holds an installation" in result.stderr
    assert "--force" in result.stderr
    assert ops_tables(data / "ops.sqlite")["alert_rules"] == []  # unchanged

    result = cli("restore", dest, "--force")
    assert result.exit_code == 0, result.output + result.stderr
    (replaced,) = data.glob("replaced-*")
    assert ops_tables(replaced / "ops.sqlite")["alert_rules"] == []
    assert (replaced / "warehouse" / "000002.duckdb").is_file()
    assert (replaced / "settings.toml").is_file()
    restored = ops_tables(data / "ops.sqlite")
    assert restored["alert_rules"] and restored["templates"] == original
    assert str(replaced) in result.output


def test_restore_is_refused_while_a_scheduler_runs(settings, cli, tmp_path):
    from scheduler.loop import scheduler_lock

    open_ops(settings)
    dest = tmp_path / "backup"
    assert cli("backup", dest).exit_code == 0
    other = settings.__class__(tmp_path / "other", env={})
    with scheduler_lock(other):
        result = cli("--data-dir", other.data_dir, "restore", dest)
    assert result.exit_code == 2 and "A scheduler is running" in result.stderr
    assert not (other.data_dir / "ops.sqlite").exists()


def test_backup_destinations_are_checked(installation, cli, tmp_path):
    inside = cli("backup", installation.data_dir / "backups" / "b1")
    assert inside.exit_code == 2 and "inside the data directory" in inside.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    full = cli("backup", tmp_path / "full")
    assert full.exit_code == 2 and "not empty" in full.stderr
    assert not list(tmp_path.glob(".*partial*"))


def test_the_archive_is_included_only_when_asked(installation, cli, tmp_path):
    archived = [p for p in installation.archive_dir.rglob("*") if p.is_file()]
    assert archived
    assert cli("backup", tmp_path / "plain").exit_code == 0
    assert not (tmp_path / "plain" / "archive").exists()
    result = cli("backup", tmp_path / "full", "--include-archive", "--json")
    assert result.exit_code == 0
    paths = {f["path"] for f in json.loads(result.stdout)["files"]}
    assert {p.relative_to(installation.data_dir).as_posix() for p in archived} <= paths


def test_the_copy_is_consistent_while_the_app_writes(installation, tmp_path):
    """Writers commit pairs of rows throughout the backup; the copy never holds half a pair."""
    from schoolcomms.ops.models import AuditEntry, utcnow

    engine = open_ops(installation)
    stop = threading.Event()
    written = []

    def write_pairs() -> None:
        n = 0
        while not stop.is_set() and n < 2000:
            with session_scope(engine) as session:
                for _ in range(2):
                    session.add(AuditEntry(at=utcnow(), actor="w", action="pair", target=str(n)))
            n += 1
        written.append(n)

    writer = threading.Thread(target=write_pairs)
    writer.start()
    try:
        manifest = backup_module.backup(installation, tmp_path / "live")
    finally:
        stop.set()
        writer.join()
    assert manifest.ops_revision == head_revision()
    con = sqlite3.connect(tmp_path / "live" / "ops.sqlite")
    counts = con.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'pair' GROUP BY target HAVING count(*) != 2"
    ).fetchall()
    total = con.execute("SELECT count(*) FROM audit_log WHERE action = 'pair'").fetchone()[0]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()
    assert counts == [] and written and total <= 2 * written[0]


def pg_tables(url: str) -> dict[str, list[tuple]]:
    """Every table of a PostgreSQL ops store, every row, in primary key order."""
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            return {
                table.name: [
                    tuple(row)
                    for row in conn.execute(
                        select(table).order_by(*(table.primary_key.columns or table.columns))
                    )
                ]
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


@pytest.mark.ops_store("postgresql")
def test_postgresql_back_up_drop_restore_elsewhere_compare(installation, cli, tmp_path, postgres):
    """pg_dump while running; the database and data directory destroyed; pg_restore into
    a new, empty database named by SCHOOLCOMMS_OPS_URL; every row compared."""
    from sqlalchemy import text

    old_url = installation.resolved_ops_url
    assert old_url.startswith("postgresql")
    before = pg_tables(old_url)
    _, before_warehouse = warehouse_tables(installation.data_dir)
    assert before["messages"] and before["users"] and before["alert_rules"]

    dest = tmp_path / "backup"
    result = cli("backup", dest, "--json")
    assert result.exit_code == 0, result.output + result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["ops_engine"] == "postgresql" and manifest["ops_revision"] == head_revision()
    assert "ops.pgdump" in {f["path"] for f in manifest["files"]}
    assert "ops.sqlite" not in {f["path"] for f in manifest["files"]}

    db.close_all()
    postgres.drop(old_url)  # the disaster: the database and the data directory are gone
    shutil.rmtree(installation.data_dir)
    new_url = postgres.create(template="template0")
    env = {"SCHOOLCOMMS_OPS_URL": new_url}
    result = cli("restore", dest, env=env)
    assert result.exit_code == 0, result.output + result.stderr

    after = pg_tables(new_url)
    assert set(after) == set(before)
    for table, rows in before.items():
        if table == "audit_log":
            assert after[table][: len(rows)] == rows
            (extra,) = after[table][len(rows) :]
            assert "backup.restore" in extra
        else:
            assert after[table] == rows, f"table {table} differs after restore"
    assert warehouse_tables(installation.data_dir)[1] == before_warehouse
    assert cli.query("SELECT count(*) AS n FROM students") == [{"n": 3}]

    # Restoring again over it needs --force; what it replaced is dumped aside first.
    result = cli("restore", dest, env=env)
    assert result.exit_code == 2 and "tables in the PostgreSQL ops store" in result.stderr
    result = cli("restore", dest, "--force", env=env)
    assert result.exit_code == 0, result.output + result.stderr
    (replaced,) = installation.data_dir.glob("replaced-*")
    assert (replaced / "ops.pgdump").stat().st_size > 0
    again = pg_tables(new_url)
    assert {t: r for t, r in again.items() if t != "audit_log"} == {
        t: r for t, r in before.items() if t != "audit_log"
    }
    from sqlalchemy import create_engine

    engine = create_engine(new_url)
    with engine.connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log WHERE action = 'backup.restore'"))
        assert len(actions.fetchall()) == 1  # the first restore's row was replaced too
    engine.dispose()
    postgres.drop(new_url)
