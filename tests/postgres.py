"""A real PostgreSQL for the tests: the session starts its own server and removes it after.

Registered in ``tests/conftest.py`` (``pytest_plugins``). What it gives:

- **The server.** The first test that needs PostgreSQL starts one (``initdb`` into a
  fresh directory under the system temp dir, ``pg_ctl start`` listening on 127.0.0.1 on
  a free port, its Unix socket inside that directory, ``fsync`` off); the end of the
  session stops it and deletes the directory. ``initdb`` refuses to run as root, so as
  root the server runs as the ``postgres`` user (``runuser``) and owns the directory;
  otherwise it runs as the current user. A session that runs no such test starts
  nothing. Clients log in over TCP with a random password (SCRAM). ``$TEST_POSTGRES_BIN``,
  else ``initdb`` on PATH, else Debian's ``/usr/lib/postgresql/<newest>/bin`` is used.
- **pytest-xdist.** Every worker is its own session, so every worker starts its own
  server on its own port and directory: nothing is shared, so nothing can collide,
  and a worker that crashes takes only its own server with it.
- **A database per test.** Each test gets ``CREATE DATABASE … TEMPLATE`` of a database
  migrated to head once per session (a file copy: fast), dropped when the test ends.
  :meth:`Databases.create` with ``template="template0"`` gives an empty one instead.
- **Both databases for every ops-store test.** A module marked ``pytest.mark.ops_store``
  runs each test that uses the ``settings`` fixture (or asks for ``ops_url``) twice,
  ids ``[sqlite]`` and ``[postgresql]``; ``@pytest.mark.ops_store("sqlite")`` on a test
  keeps it to the backends named. For ``postgresql`` the data directory of the
  ``settings`` fixture (``tmp_path / "data"``) gets ``ops_url`` in its
  ``settings.toml``, so every ``Settings`` on that folder (the CLI, child processes,
  a second ``Settings(data_dir, env={})``) uses the test's database; ``loaded`` copies
  the load history into it. ``ops_data_dir(folder)`` does the same for any other data
  directory a test makes (``template="template0"``: an empty, never-migrated database).
- **Another server.** ``TEST_POSTGRES_URL`` (an admin URL, ``postgresql+psycopg://…``)
  makes the tests use that server instead of starting one; test databases get
  unique names there and are dropped afterwards.

If PostgreSQL cannot be started, every test that needs it FAILS (never skips) with a
message naming ``scripts/install_postgres.sh``.

One more guard, for the tests that start processes (on either database): after each
test ``sys.modules["__main__"]`` is put back, because Streamlit's AppTest leaves the
page it ran there and a "spawn" child would run that page first.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, create_engine, func, select, text
from sqlalchemy.engine import make_url

BACKENDS = ("sqlite", "postgresql")
EXTERNAL_URL_VARIABLE = "TEST_POSTGRES_URL"
BIN_VARIABLE = "TEST_POSTGRES_BIN"
INSTALL_HINT = (
    "Install the PostgreSQL server with `bash scripts/install_postgres.sh` (Debian's "
    "postgresql package; `make test` runs it first), or point the tests at a server "
    f"with {EXTERNAL_URL_VARIABLE}=postgresql+psycopg://user:password@host/postgres."
)
SERVER_OWNER = "postgres"  # initdb will not run as root: as root, the server runs as this user
USER = "schoolcomms"
HEAD_TEMPLATE = "schoolcomms_head"
START_TIMEOUT_S = 60
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be started or reached; the message says how to fix it."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: $TEST_POSTGRES_BIN, PATH, Debian's."""
    candidates: list[Path] = []
    if os.environ.get(BIN_VARIABLE):
        candidates.append(Path(os.environ[BIN_VARIABLE]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))

    # Debian keeps the server binaries off PATH, one directory per major version.
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    candidates.append(Path("/usr/local/pgsql/bin"))
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        f"No PostgreSQL server binaries (initdb, pg_ctl) found. {INSTALL_HINT}"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A throw-away PostgreSQL server in a temporary directory, owned by this session."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="schoolcomms-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.running = False

    def _command(self, *args: str | Path) -> list[str]:
        command = [str(a) for a in args]
        return ["runuser", "-u", SERVER_OWNER, "--", *command] if self.as_root else command

    def _run(self, *args: str | Path) -> None:
        result = subprocess.run(
            self._command(*args), capture_output=True, text=True, timeout=START_TIMEOUT_S
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"`{' '.join(str(a) for a in args)}` failed (exit {result.returncode}):\n"
                f"{(result.stderr or result.stdout).strip()}\n{INSTALL_HINT}"
            )

    def start(self) -> None:
        """initdb, then start the server on a free loopback port (a few tries on a clash)."""
        if self.as_root:
            if shutil.which("runuser") is None:
                raise PostgresUnavailable(
                    f"Running as root, but `runuser` is missing. {INSTALL_HINT}"
                )
            try:
                shutil.chown(self.root, user=SERVER_OWNER)
            except (LookupError, PermissionError) as exc:
                raise PostgresUnavailable(
                    f"Running as root, and the `{SERVER_OWNER}` user to run the server as is "
                    f"missing ({exc}). {INSTALL_HINT}"
                ) from exc
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        if self.as_root:
            shutil.chown(password_file, user=SERVER_OWNER)
        self._run(
            self.bindir / "initdb",
            "--pgdata",
            self.data,
            "--username",
            USER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",  # byte-order text comparison, as SQLite does
            "--no-sync",
        )
        password_file.unlink()
        last: PostgresUnavailable | None = None
        for _ in range(3):
            self.port = free_port()
            options = {**_SERVER_SETTINGS, "port": str(self.port)}
            options["unix_socket_directories"] = str(self.root)
            flags = " ".join(f"-c {name}={value}" for name, value in options.items())
            try:
                self._run(
                    self.bindir / "pg_ctl",
                    "--pgdata",
                    self.data,
                    "--log",
                    self.log,
                    "--wait",
                    f"--timeout={START_TIMEOUT_S}",
                    "--options",
                    flags,
                    "start",
                )
            except PostgresUnavailable as exc:
                last = exc  # most likely another process took the port meanwhile
                continue
            self.running = True
            return
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise PostgresUnavailable(f"{last}\nServer log:\n{log}")

    def admin_url(self) -> str:
        """The URL of the server's ``postgres`` database as the superuser."""
        return f"postgresql+psycopg://{USER}:{self.password}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is worth keeping) and delete it all."""
        if self.running:
            self.running = False
            subprocess.run(
                self._command(
                    self.bindir / "pg_ctl",
                    "--pgdata",
                    self.data,
                    "-m",
                    "immediate",
                    "--wait",
                    "stop",
                ),
                capture_output=True,
                timeout=START_TIMEOUT_S,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` with its database replaced by ``name``, password included."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


class Databases:
    """Test databases on one PostgreSQL server: made from a template, dropped after."""

    def __init__(self, admin_url: str, worker: str = "main") -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.prefix = (
            f"schoolcomms_{re.sub(r'[^a-z0-9]', '', worker.lower())}_{uuid.uuid4().hex[:6]}"
        )
        self.created: set[str] = set()
        self.head_template: str | None = None
        with self.admin.connect() as conn:
            self.version = int(conn.execute(text("SHOW server_version_num")).scalar_one())

    def _new_name(self) -> str:
        return f"{self.prefix}_{uuid.uuid4().hex[:10]}"

    def create(self, template: str | None = None) -> str:
        """A new database (a copy of the session's migrated one unless ``template`` is
        given: ``"template0"`` for an empty one); its URL."""
        source = template or self._head()
        name = self._new_name()
        # PostgreSQL 15+: FILE_COPY copies the few files of a small database at once
        # (WAL_LOG writes every block to the WAL); with fsync off its checkpoints are cheap.
        strategy = " STRATEGY = FILE_COPY" if self.version >= 150000 else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"{strategy}'))
        self.created.add(name)
        return database_url(self.admin_url, name)

    def _head(self) -> str:
        if self.head_template is None:
            from schoolcomms.ops.db import make_engine, upgrade

            url = self.create(template="template0")
            engine = make_engine(url)
            try:
                upgrade(engine)
            finally:
                engine.dispose()  # a template must have no connections
            self.head_template = str(make_url(url).database)
        return self.head_template

    def drop(self, url: str) -> None:
        """Drop the database at ``url``, closing whatever connections are left open."""
        name = str(make_url(url).database)
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.discard(name)

    def close(self) -> None:
        """Drop every database made here (on a server of our own they vanish with it)."""
        for name in list(self.created):
            with contextlib.suppress(Exception):  # best effort at the end of a session
                self.drop(database_url(self.admin_url, name))
        self.admin.dispose()


_failure: str | None = None


def _start(worker: str) -> tuple[Databases, LocalServer | None]:
    external = os.environ.get(EXTERNAL_URL_VARIABLE)
    if external:
        try:
            return Databases(external, worker), None
        except Exception as exc:
            raise PostgresUnavailable(
                f"{EXTERNAL_URL_VARIABLE} is set, but that server cannot be used: {exc}"
            ) from exc
    server = LocalServer(find_bindir())
    atexit.register(server.stop)  # even if the session is cut short
    try:
        server.start()
        return Databases(server.admin_url(), worker), server
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> Iterator[Databases]:
    """This session's PostgreSQL (its own server unless TEST_POSTGRES_URL is set).

    Started by the first test that asks for it, stopped and removed at the end of the
    session. Fails the test (with the fix) when PostgreSQL cannot be started.
    """
    global _failure
    if _failure is not None:
        pytest.fail(_failure, pytrace=False)
    worker = str(getattr(request.config, "workerinput", {}).get("workerid", "main"))
    try:
        databases, server = _start(worker)
    except Exception as exc:
        _failure = f"PostgreSQL is needed for the [postgresql] ops-store tests: {exc}"
        if not isinstance(exc, PostgresUnavailable):
            _failure += f"\n{INSTALL_HINT}"
        pytest.fail(_failure, pytrace=False)
    try:
        yield databases
    finally:
        databases.close()
        if server is not None:
            server.stop()


def point_data_dir(data_dir: Path, url: str) -> None:
    """Make every ``Settings`` on ``data_dir`` use the ops store at ``url`` (settings.toml)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "settings.toml"
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(f'{before}ops_url = "{url}"\n', encoding="utf-8")


@pytest.fixture
def ops_backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgresql"``: set per test in modules marked ``ops_store``."""
    return str(getattr(request, "param", "sqlite"))


class DataDirs:
    """Points data directories at ops stores: ``dirs(folder)`` returns ``folder``.

    On SQLite nothing is done (each folder keeps its own ops.sqlite); on PostgreSQL each
    folder gets a database of its own through its settings.toml. :meth:`close` drops them.
    """

    def __init__(self, backend: str, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.request = request
        self.urls: dict[Path, str] = {}
        self.databases: Databases | None = None

    def __call__(self, folder: Path, *, template: str | None = None) -> Path:
        if self.backend == "postgresql":
            if self.databases is None:
                self.databases = self.request.getfixturevalue("postgres")
            url = self.databases.create(template)
            self.urls[folder] = url
            point_data_dir(folder, url)
        return folder

    def close(self) -> None:
        """Close this process's engines and drop the databases made here."""
        if self.databases is None:
            return
        from schoolcomms.ops import db

        db.close_all()  # the test's pooled connections, before the databases go
        for url in self.urls.values():
            self.databases.drop(url)


@pytest.fixture
def ops_data_dir(ops_backend: str, request: pytest.FixtureRequest) -> Iterator[DataDirs]:
    """``ops_data_dir(folder)``: ``folder``, with a PostgreSQL database of its own in the
    ``[postgresql]`` run of a test (``template="template0"``: an empty one)."""
    dirs = DataDirs(ops_backend, request)
    try:
        yield dirs
    finally:
        dirs.close()


@pytest.fixture
def ops_url(ops_data_dir: DataDirs, tmp_path: Path) -> str | None:
    """None (SQLite in the data dir), or the URL of this test's own PostgreSQL database.

    For PostgreSQL, ``tmp_path / "data"`` (the ``settings`` fixture's data directory) is
    pointed at the database through its settings.toml; the database is dropped after.
    """
    folder = ops_data_dir(tmp_path / "data")
    return ops_data_dir.urls.get(folder)


@pytest.fixture(autouse=True)
def _real_main_module() -> Iterator[None]:
    """Put back ``sys.modules["__main__"]`` after every test.

    Streamlit's script runner (AppTest) installs the page it runs as ``__main__`` and
    leaves it there; a later test that starts a process the "spawn" way (the ops-store
    tests that open a store from several processes at once, or kill a dispatcher) would
    then run that dashboard page in the child before its target, and wait for it.
    """
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ops_store(*backends): run each test that uses the ops store (the settings or "
        "ops_url fixture) on SQLite and on PostgreSQL, or only on the backends named",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("ops_store")
    if marker is None or "ops_backend" not in metafunc.fixturenames:
        return
    backends: Sequence[str] = marker.args or BACKENDS
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise ValueError(f"ops_store backends must be among {BACKENDS}, not {sorted(unknown)}")
    metafunc.parametrize("ops_backend", list(backends), indirect=True, ids=list(backends))


def copy_rows(source: Engine, target: Engine) -> int:
    """Copy every ops-store row from ``source`` into the (empty, migrated) ``target``.

    Used to give a PostgreSQL test the load history of the SQLite data directory it was
    copied from. Sequences are moved past the copied ids. Returns the rows copied.
    """
    from schoolcomms.ops.models import Base

    copied = 0
    with source.connect() as read, target.begin() as write:
        for table in Base.metadata.sorted_tables:
            rows = [dict(row) for row in read.execute(select(table)).mappings()]
            if rows:
                write.execute(table.insert(), rows)
                copied += len(rows)
        if target.dialect.name == "postgresql":
            _advance_sequences(write, Base.metadata)
    return copied


def _advance_sequences(conn: Any, metadata: MetaData) -> None:
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is not None:
            highest = conn.execute(select(func.max(column))).scalar()
            if highest is not None:
                conn.execute(
                    text("SELECT setval(pg_get_serial_sequence(:t, :c), :n)"),
                    {"t": table.name, "c": column.name, "n": highest},
                )
