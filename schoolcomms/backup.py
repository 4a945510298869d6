"""Backups and restores of an installation: the ops store, the warehouse and settings.

A backup is a folder that mirrors the data directory::

    manifest.json              format, when, schema revision, generation, SHA-256 of every file
    ops.sqlite                 the SQLite ops store, copied with SQLite's online backup API
      or ops.pgdump            ``pg_dump --format=custom`` when ops_url is PostgreSQL
    warehouse/000042.duckdb    the current warehouse generation only
    warehouse/CURRENT
    settings.toml              if there is one
    letters/                   printed letter batches (PDF), if any
    archive/                   the loaded extract files, only with ``include_archive``

Both stores are copied consistently while the dashboard and the scheduler run: the
SQLite backup API (or ``pg_dump``) takes one snapshot of the ops store, and a warehouse
generation is never changed once published, so an open handle on the current one is a
consistent copy even if a load publishes (and prunes) meanwhile. Secrets are never in a
backup: they live in the environment or ``.streamlit/secrets.toml``.

A restore verifies every checksum before it touches anything, refuses an ops store newer
than this code knows, goes only into an empty data directory (or, with ``force``, moves
what it replaces into ``replaced-<time>/``), and migrates an older ops store forward.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from schoolcomms.ops.db import SQLITE_BUSY_TIMEOUT_MS, close_all, current_revision, make_engine
from schoolcomms.settings import Settings
from schoolcomms.warehouse import CURRENT_FILE, Warehouse, WarehouseError

MANIFEST = "manifest.json"
FORMAT = "schoolcomms-backup"
FORMAT_VERSION = 1
SQLITE_FILE = "ops.sqlite"
PGDUMP_FILE = "ops.pgdump"
CHUNK = 1 << 20
# Folders of the data directory copied as they are (the archive only when asked).
FOLDERS = ("letters",)


class BackupError(RuntimeError):
    """A backup or restore cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class BackupFile:
    """One file of a backup: its path inside the backup folder, size and SHA-256."""

    path: str
    bytes: int
    sha256: str


@dataclass
class Manifest:
    """What a backup holds (``manifest.json``)."""

    created_at: str
    source_data_dir: str
    ops_engine: str  # "sqlite" or "postgresql"
    ops_revision: str | None
    warehouse_generation: int | None
    includes_archive: bool = False
    schoolcomms_version: str = ""
    files: list[BackupFile] = field(default_factory=list)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def as_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """A manifest from ``manifest.json`` data (unknown keys are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["files"] = [BackupFile(**f) for f in data.get("files", [])]
        return cls(**known)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did."""

    source: Path
    manifest: Manifest
    revision_before: str | None  # the backup's ops store schema revision
    revision_after: str | None  # after migrating forward
    replaced: Path | None  # where what was there before went (force)

    @property
    def migrated(self) -> bool:
        return self.revision_before != self.revision_after


# ---- small helpers ----------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashed(source: Any, target: Path) -> str:
    """Copy an open binary file (or a path) to ``target``, fsynced; return its SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle = source.open("rb") if isinstance(source, Path) else source
    try:
        with target.open("wb") as out:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    finally:
        if isinstance(source, Path):
            handle.close()
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _version() -> str:
    try:
        return metadata.version("schoolcomms")
    except metadata.PackageNotFoundError:
        return ""


def ops_engine_kind(url: str) -> str:
    """ "sqlite" or "postgresql" for an ops store URL; :class:`BackupError` for others."""
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(
            f"The ops store is a {backend} database; backups support SQLite and PostgreSQL only."
        )
    return backend


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(
            "The ops store is an in-memory SQLite database: there is nothing to copy."
        )
    return Path(database).expanduser().resolve()


def known_revisions() -> set[str]:
    """Every ops store schema revision this code can migrate from."""
    from alembic.script import ScriptDirectory

    from schoolcomms.ops.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def seal(folder: Path, manifest: Manifest) -> Manifest:
    """Hash every file under ``folder`` into ``manifest`` and write ``manifest.json``."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative != MANIFEST:
            files.append(BackupFile(relative, path.stat().st_size, _sha256(path)))
    manifest.files = files
    _write_atomic(folder / MANIFEST, json.dumps(manifest.as_dict(), indent=2) + "\n")
    return manifest


# ---- the ops store ----------------------------------------------------------------------


def _backup_sqlite(source: Path, target: Path) -> str | None:
    """Copy the live SQLite store with the online backup API; return its schema revision."""
    if not source.is_file():
        raise BackupError(
            f"There is no ops store at {source}, so there is nothing to back up. Check "
            "--data-dir (or SCHOOLCOMMS_DATA_DIR) names the installation's data directory."
        )
    src = sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # one step: a single consistent snapshot, writers carry on (WAL)
        # A self-contained file: no -wal or -shm beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
        (check,) = dst.execute("PRAGMA integrity_check").fetchone()
        if check != "ok":
            raise BackupError(
                f"The ops store at {source} failed SQLite's integrity check ({check}); this "
                "copy would not restore. Restore the last good backup and investigate."
            )
        return _sqlite_revision(dst)
    finally:
        dst.close()
        src.close()


def _sqlite_revision(con: sqlite3.Connection) -> str | None:
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else str(row[0])


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for ``url`` and an environment carrying its password.

    The password goes in PGPASSWORD, not on the command line, where ``ps`` would show it.
    """
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run_pg(tool: str, args: list[str], url: str) -> None:
    uri, env = _libpq(url)
    if shutil.which(tool) is None:
        raise BackupError(
            f"{tool} is not installed, and a PostgreSQL ops store needs it: install the "
            "PostgreSQL client tools matching the server's version (apt install "
            "postgresql-client)."
        )
    done = subprocess.run(
        [tool, *args, "--dbname", uri], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{tool} failed: {done.stderr.strip() or done.returncode}")


def _pg_revision_and_tables(url: str) -> tuple[str | None, list[str]]:
    engine = make_engine(url)
    try:
        return current_revision(engine), inspect(engine).get_table_names()
    except Exception as exc:
        raise BackupError(f"Cannot reach the PostgreSQL ops store: {exc}".splitlines()[0]) from exc
    finally:
        engine.dispose()


# ---- backup -----------------------------------------------------------------------------


def _copy_current_generation(settings: Settings, folder: Path) -> int | None:
    """Copy the current warehouse generation (and CURRENT) into ``folder/warehouse``."""
    warehouse = Warehouse.from_settings(settings)
    for _attempt in range(5):
        try:
            generation = warehouse.generation()
        except WarehouseError as exc:
            raise BackupError(str(exc)) from exc
        if generation is None:
            return None
        path = warehouse.path_for(generation)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            continue  # a load published a newer one and pruned this meanwhile: look again
        with handle:
            _copy_hashed(handle, folder / "warehouse" / path.name)
        (folder / "warehouse" / CURRENT_FILE).write_text(f"{generation}\n")
        return generation
    raise BackupError("The warehouse changed under the backup five times running; try again.")


def backup(settings: Settings, dest: Path, *, include_archive: bool = False) -> Manifest:
    """Back up the installation of ``settings`` into the new folder ``dest``.

    ``dest`` must not exist (or be an empty folder) and must be outside the data
    directory. The copy is built beside it and renamed into place when complete, so a
    folder with a ``manifest.json`` is always a whole backup.
    """
    dest = Path(dest).expanduser().resolve()
    data_dir = settings.data_dir
    if dest == data_dir or data_dir in dest.parents:
        raise BackupError(
            f"{dest} is inside the data directory {data_dir}; a backup there is lost with it. "
            "Choose a folder elsewhere, ideally on another disk."
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} already exists and is not empty; name a new folder.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    work.chmod(0o700)  # pupils' and parents' personal data: the service user only
    try:
        url = settings.resolved_ops_url
        kind = ops_engine_kind(url)
        if kind == "sqlite":
            revision = _backup_sqlite(_sqlite_path(url), work / SQLITE_FILE)
        else:
            revision, _tables = _pg_revision_and_tables(url)
            _run_pg("pg_dump", ["--format=custom", "--file", str(work / PGDUMP_FILE)], url)
        generation = _copy_current_generation(settings, work)
        if settings.settings_file.is_file():
            _copy_hashed(settings.settings_file, work / "settings.toml")
        folders = [*FOLDERS, "archive"] if include_archive else list(FOLDERS)
        for name in folders:
            if (data_dir / name).is_dir():
                shutil.copytree(data_dir / name, work / name)
        manifest = Manifest(
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            source_data_dir=str(data_dir),
            ops_engine=kind,
            ops_revision=revision,
            warehouse_generation=generation,
            includes_archive=include_archive,
            schoolcomms_version=_version(),
        )
        seal(work, manifest)
        if dest.exists():
            dest.rmdir()
        os.replace(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


# ---- verify -----------------------------------------------------------------------------


def read_manifest(src: Path) -> Manifest:
    """The manifest of the backup folder ``src``, or :class:`BackupError` in words."""
    path = Path(src) / MANIFEST
    if not path.is_file():
        raise BackupError(
            f"{src} is not a schoolcomms backup: it has no {MANIFEST}. Name the folder "
            "that `schoolcomms backup` created."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}")
        manifest = Manifest.from_dict(data)
    except (ValueError, TypeError, AttributeError) as exc:
        raise BackupError(
            f"The manifest of the backup at {src} is damaged ({exc}); nothing was restored. "
            "Use another backup."
        ) from exc
    if manifest.format_version > FORMAT_VERSION:
        raise BackupError(
            f"The backup at {src} was written by a newer schoolcomms (backup format "
            f"{manifest.format_version}); upgrade schoolcomms to restore it."
        )
    return manifest


def _restorable(path: str) -> bool:
    """Whether ``path`` is one of the files a backup may put into a data directory."""
    parts = Path(path).parts
    if Path(path).is_absolute() or ".." in parts or not parts:
        return False
    if path in (SQLITE_FILE, PGDUMP_FILE, "settings.toml", f"warehouse/{CURRENT_FILE}"):
        return True
    if parts[0] == "warehouse":
        return len(parts) == 2 and parts[1].endswith(".duckdb") and parts[1][:-7].isdigit()
    return parts[0] in (*FOLDERS, "archive") and len(parts) > 1


def verify(src: Path) -> Manifest:
    """Check every file of the backup at ``src`` against its manifest; return the manifest.

    Raises :class:`BackupError` naming every missing or damaged file.
    """
    src = Path(src)
    manifest = read_manifest(src)
    problems = []
    for entry in manifest.files:
        path = src / entry.path
        if not _restorable(entry.path):
            problems.append(f"{entry.path} is not a file a backup holds")
        elif not path.is_file():
            problems.append(f"{entry.path} is missing")
        elif path.stat().st_size != entry.bytes or _sha256(path) != entry.sha256:
            problems.append(f"{entry.path} does not match its checksum")
    names = {entry.path for entry in manifest.files}
    needed = SQLITE_FILE if manifest.ops_engine == "sqlite" else PGDUMP_FILE
    if needed not in names:
        problems.append(f"the manifest lists no {needed}")
    generation = manifest.warehouse_generation
    if generation is not None and f"warehouse/{generation:06d}.duckdb" not in names:
        problems.append(f"the manifest lists no file for warehouse generation {generation}")
    if problems:
        raise BackupError(
            f"The backup at {src} is damaged: {'; '.join(problems)}. Nothing was restored; "
            "use another backup (and check the disk it is on)."
        )
    revision = manifest.ops_revision
    if revision is not None and revision not in known_revisions():
        raise BackupError(
            f"The backup's ops store is at schema revision {revision}, newer than this "
            "version of schoolcomms knows. Upgrade schoolcomms to the version that made the "
            "backup (or later) and restore again; see docs/operations.md, Upgrading."
        )
    return manifest


# ---- restore ----------------------------------------------------------------------------


def _target_ops_url(settings: Settings, src: Path) -> str:
    """The ops store URL in force once the backup's settings.toml is in place."""
    if settings.source("ops_url") in ("env", "override"):
        return settings.resolved_ops_url
    restored = src / "settings.toml"
    configured = ""
    if restored.is_file():
        try:
            configured = str(tomllib.loads(restored.read_text("utf-8")).get("ops_url", ""))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BackupError(f"The backup's settings.toml is not valid TOML: {exc}") from exc
    return configured or f"sqlite:///{settings.data_dir / SQLITE_FILE}"


def _existing(settings: Settings, url: str, manifest: Manifest) -> list[str]:
    """What of an installation the data directory (and ops store) already hold."""
    found = []
    if ops_engine_kind(url) == "sqlite":
        if _sqlite_path(url).exists():
            found.append(str(_sqlite_path(url)))
    elif _pg_revision_and_tables(url)[1]:
        found.append("tables in the PostgreSQL ops store")
    warehouse = settings.warehouse_dir
    if (warehouse / CURRENT_FILE).exists() or any(warehouse.glob("*.duckdb")):
        found.append(str(warehouse))
    if settings.settings_file.exists():
        found.append(str(settings.settings_file))
    folders = [*FOLDERS, "archive"] if manifest.includes_archive else list(FOLDERS)
    for name in folders:
        folder = settings.data_dir / name
        if folder.is_dir() and any(folder.iterdir()):
            found.append(str(folder))
    return found


def _move_aside(settings: Settings, url: str, manifest: Manifest) -> Path:
    """Move what a restore replaces into ``<data dir>/replaced-<time>/``; return that folder."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    aside = settings.data_dir / f"replaced-{stamp}"
    aside.mkdir(parents=True)
    moves: list[Path] = [settings.settings_file]
    if ops_engine_kind(url) == "sqlite":
        ops = _sqlite_path(url)
        moves += [ops, ops.with_name(ops.name + "-wal"), ops.with_name(ops.name + "-shm")]
    else:
        _run_pg("pg_dump", ["--format=custom", "--file", str(aside / PGDUMP_FILE)], url)
    warehouse = settings.warehouse_dir
    moves += [warehouse / CURRENT_FILE, *warehouse.glob("*.duckdb")]
    folders = [*FOLDERS, "archive"] if manifest.includes_archive else list(FOLDERS)
    moves += [settings.data_dir / name for name in folders]
    for path in moves:
        if path.exists():
            target = (
                aside / path.relative_to(settings.data_dir)
                if path.is_relative_to(settings.data_dir)
                else aside / path.name
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
    return aside


def _place(src: Path, entry: BackupFile, target: Path) -> None:
    """Copy one backup file to ``target`` via a staged name, checking its checksum again."""
    staged = target.with_name(f".{target.name}.restoring")
    if _copy_hashed(src / entry.path, staged) != entry.sha256:
        staged.unlink(missing_ok=True)
        raise BackupError(
            f"{entry.path} changed while it was being restored (a failing disk?); the "
            "restore stopped part-way. Run it again with --force from a good backup."
        )
    os.replace(staged, target)


def restore(
    settings: Settings, src: Path, *, force: bool = False, actor: str = "cli"
) -> RestoreReport:
    """Restore the backup folder ``src`` into the installation of ``settings``.

    Every checksum is verified first, and a backup from a newer schema is refused. The
    data directory must hold no installation unless ``force``: then what it holds is
    moved to ``replaced-<time>/`` (a PostgreSQL store is dumped there). The scheduler
    and any load must not be running (their locks are taken). An older ops store is
    migrated forward, and the restore is written to the audit log as ``actor``.
    """
    from scheduler.loop import AlreadyRunning, scheduler_lock
    from schoolcomms.warehouse import Busy

    src = Path(src).expanduser().resolve()
    manifest = verify(src)
    url = _target_ops_url(settings, src)
    kind = ops_engine_kind(url)
    if kind != manifest.ops_engine:
        raise BackupError(
            f"The backup holds a {manifest.ops_engine} ops store but this installation's "
            f"ops store is {kind} (setting ops_url). Restore it with ops_url set the way it "
            "was when the backup was made."
        )
    try:
        with (
            scheduler_lock(settings),
            Warehouse.from_settings(settings).write_lock(timeout=0),
        ):
            return _restore_locked(settings, src, manifest, url, force=force, actor=actor)
    except AlreadyRunning as exc:
        raise BackupError(
            f"A scheduler is running for {settings.data_dir}. Stop it and the dashboard "
            "first (systemctl stop schoolcomms-scheduler schoolcomms-dashboard), then restore."
        ) from exc
    except Busy as exc:
        raise BackupError(
            "A load into the warehouse is running; wait for it to finish, stop the "
            "dashboard and the scheduler, then restore."
        ) from exc


def _restore_locked(
    settings: Settings, src: Path, manifest: Manifest, url: str, *, force: bool, actor: str
) -> RestoreReport:
    from schoolcomms.ops.db import upgrade
    from schoolcomms.ops.history import audit

    existing = _existing(settings, url, manifest)
    if existing and not force:
        raise BackupError(
            f"{settings.data_dir} already holds an installation ({'; '.join(existing)}). "
            "Restore into an empty data directory, or add --force to replace it: what is "
            f"there now is moved to {settings.data_dir}/replaced-<time>/."
        )
    close_all()  # this process's engines point at the store being replaced
    replaced = _move_aside(settings, url, manifest) if existing else None
    by_path = {entry.path: entry for entry in manifest.files}
    for entry in manifest.files:
        if entry.path not in (SQLITE_FILE, PGDUMP_FILE, f"warehouse/{CURRENT_FILE}"):
            target = settings.data_dir / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            _place(src, entry, target)
    if manifest.ops_engine == "sqlite":
        _place(src, by_path[SQLITE_FILE], _sqlite_path(url))
    else:
        options = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        if existing:
            options += ["--clean", "--if-exists"]
        _run_pg("pg_restore", [*options, str(src / PGDUMP_FILE)], url)
    if manifest.warehouse_generation is not None:
        warehouse = Warehouse.from_settings(settings)
        # A reader this process cached for the same file name would see the replaced file.
        warehouse._forget_reader(warehouse.path_for(manifest.warehouse_generation))
        _write_atomic(settings.warehouse_dir / CURRENT_FILE, f"{manifest.warehouse_generation}\n")
    engine = make_engine(url)
    try:
        upgrade(engine)
        after = current_revision(engine)
        audit(
            engine,
            actor,
            "backup.restore",
            str(src),
            {
                "created_at": manifest.created_at,
                "source_data_dir": manifest.source_data_dir,
                "revision_in_backup": manifest.ops_revision,
                "revision_now": after,
                "warehouse_generation": manifest.warehouse_generation,
                "replaced": None if replaced is None else str(replaced),
            },
        )
    finally:
        engine.dispose()
    return RestoreReport(src, manifest, manifest.ops_revision, after, replaced)
