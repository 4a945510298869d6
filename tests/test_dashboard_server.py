"""`schoolcomms dashboard`: the libraries and page helpers imported before serving."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from schoolcomms.dashboard_server import NOT_PRELOADED, streamlit_options

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
before = set(sys.modules)
from schoolcomms.dashboard_server import preload
taken = preload()
print(json.dumps({"taken": taken, "loaded": sorted(set(sys.modules) - before)}))
"""


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLCOMMS_")}
    env["SCHOOLCOMMS_DATA_DIR"] = str(data_dir)
    return env


def test_preload_imports_the_page_helpers_and_libraries_but_no_page(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(tmp_path / "data"),
        check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = set(found["loaded"])
    for module in (
        "pandas",
        "duckdb",
        "altair",
        "sqlalchemy",
        "schoolcomms.auth",
        "dashboard.common",
        "dashboard.messaging",
        "reports.grades",
        "reports.contacts",
        "senders.outbox",
    ):
        assert module in loaded, module
    # Pages and the app are scripts Streamlit runs: importing them would draw a page.
    assert not [m for m in loaded if m.startswith("dashboard.pages") or m == "dashboard.app"]
    assert set(found["taken"]) == {
        "libraries",
        "schoolcomms",
        "reports",
        "senders",
        "dashboard",
        "warm_up",
    }
    assert "No runtime found" not in done.stderr, "the cache warning should be quietened"
    assert "dashboard.app" in NOT_PRELOADED


def test_options_listen_where_told_and_do_not_watch_files(settings) -> None:  # noqa: ANN001
    options = streamlit_options(settings, 8600, "127.0.0.1")
    pairs = dict(zip(options[::2], options[1::2], strict=True))
    assert pairs["--server.port"] == "8600"
    assert pairs["--server.address"] == "127.0.0.1"
    assert pairs["--server.fileWatcherType"] == "none"
    assert pairs["--runner.postScriptGC"] == "false"  # a full collection per run: see why
    assert pairs["--server.maxUploadSize"] == str(settings["max_extract_mb"])
    assert "--server.address" not in streamlit_options(settings, 8600, None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_dashboard_command_serves_and_prints_the_first_admin(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "dashboard.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "schoolcomms",
                "dashboard",
                "--address",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=clean_env(tmp_path / "data"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as reply:
                    answer = reply.read().decode()
                    break
            except OSError:
                time.sleep(0.3)
        assert answer == "ok", log.read_text(errors="replace")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as reply:
            assert reply.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert "admin@localhost" in text and "password:" in text
    assert "Traceback" not in text


def _processes_using(marker: str) -> list[int]:
    """Pids whose command line mentions ``marker`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in command:
                found.append(int(entry.name))
    return found


def test_run_starts_the_dashboard_and_scheduler_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "schoolcomms", "--data-dir", str(data_dir), "run"]
            + ["--port", str(port)],
            cwd=tmp_path,
            env=clean_env(data_dir),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as reply:
                    if reply.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.3)
        children = [p for p in _processes_using(str(data_dir)) if p != process.pid]
        assert len(children) == 2, (children, log.read_text(errors="replace"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while _processes_using(str(data_dir)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_using(str(data_dir)) == [], "the dashboard or scheduler was left running"
    finally:
        for pid in _processes_using(str(data_dir)):
            os.kill(pid, signal.SIGKILL)
