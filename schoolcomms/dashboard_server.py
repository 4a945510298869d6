"""Serving the dashboard: import what the pages need once, at start-up, then run Streamlit.

A Streamlit page imports its libraries (pandas, pyarrow, SQLAlchemy, DuckDB, Altair) and
the project's page helpers on the first visit to it; on this kind of machine that is
2–3 s of the first visitor's wait. ``schoolcomms dashboard`` runs Streamlit in its own
process after :func:`preload`, so the imports are paid while the server starts and no
visitor waits for them.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
import time
from pathlib import Path
from typing import Any

from schoolcomms.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"

# Libraries first (each one's time then excludes what the ones before it loaded).
LIBRARIES = ("pandas", "pyarrow", "sqlalchemy", "duckdb", "altair", "alembic")
# Project packages whose every module a page may import. Pages and the app are scripts:
# Streamlit runs them, they are not imported here.
PACKAGES = ("schoolcomms", "reports", "senders", "dashboard")
CONFIG_POLL_SECONDS = 3.0
NOT_PRELOADED = ("dashboard.app", "dashboard.pages", "schoolcomms.__main__", "senders.__main__")


def _modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if not any(info.name == skip or info.name.startswith(f"{skip}.") for skip in NOT_PRELOADED):
            names.append(info.name)
    return names


def preload() -> dict[str, float]:
    """Import the libraries and project modules the pages use; seconds taken by each group.

    Example::

        >>> seconds = preload()
        >>> sorted(seconds)  # doctest: +SKIP
        ['dashboard', 'libraries', 'reports', 'schoolcomms', 'senders']
    """
    taken: dict[str, float] = {}
    # Decorating a function with st.cache_data before the server runs logs "No runtime
    # found" once per function; the cache itself is chosen when it is first used, under
    # the server, so the warning says nothing here.
    from streamlit.runtime.caching import cache_data_api

    cache_log = logging.getLogger(cache_data_api.__name__)
    level = cache_log.level
    cache_log.setLevel(logging.ERROR)
    try:
        _import_all(taken)
    finally:
        cache_log.setLevel(level)
    began = time.perf_counter()
    _warm_up()
    taken["warm_up"] = time.perf_counter() - began
    return taken


def _warm_up() -> None:
    """Do once, now, what the first visitor would otherwise wait for: the first table
    made and turned into Arrow (pandas and pyarrow load more code on first use) and the
    first chart turned into Vega-Lite (Altair loads its schema)."""
    import altair as alt
    import pandas as pd
    from streamlit import dataframe_util, delta_generator

    frame = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "s": ["a", "b", "c"],
            "t": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
        }
    )
    dataframe_util.convert_pandas_df_to_arrow_bytes(frame)
    alt.Chart(frame).mark_bar().encode(x="s:N", y="n:Q").to_dict()
    # Streamlit's first element of a process checks, for a warning meant for people who
    # run a script with plain `python`, whether it is in a REPL: that check walks every
    # loaded module (about 0.3 s here, with the pages' modules loaded). The dashboard is
    # always served by `streamlit run`, so the warning is marked as shown.
    if hasattr(delta_generator, "_use_warning_has_been_displayed"):
        delta_generator._use_warning_has_been_displayed = True


def _import_all(taken: dict[str, float]) -> None:
    began = time.perf_counter()
    for name in LIBRARIES:
        importlib.import_module(name)
    taken["libraries"] = time.perf_counter() - began
    for package in PACKAGES:
        began = time.perf_counter()
        for name in _modules(package):
            importlib.import_module(name)
        taken[package] = time.perf_counter() - began


def streamlit_options(settings: Settings, port: int, address: str | None) -> list[str]:
    """The ``streamlit run`` options the dashboard is served with."""
    options = [
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        # Uploads may be as large as the loader accepts (Streamlit's default is 200 MB).
        "--server.maxUploadSize",
        str(settings["max_extract_mb"]),
        # A served dashboard does not reload itself when files change (an upgrade is a
        # restart), and its visitors get the viewer's menu, not the developer's.
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
        # Streamlit runs a full garbage collection after every script run. With the
        # dashboard's caches (hundreds of MB of frames) on the heap that took 60% of the
        # server's CPU under the load test (py-spy, docs/performance.md); Python's own
        # collector still runs as objects are allocated.
        "--runner.postScriptGC",
        "false",
    ]
    if address:
        options += ["--server.address", address]
    return options


def serve(settings: Settings, port: int, address: str | None = None) -> Any:
    """Preload, then run the Streamlit server in this process until it stops."""
    preload()
    from streamlit.watcher import polling_path_watcher
    from streamlit.web import cli as streamlit_cli

    # Streamlit polls its config and secrets files five times a second, whatever the
    # file watcher setting (5% of the server's CPU under the load test); every few
    # seconds is soon enough for a file an administrator edits.
    polling_path_watcher._POLLING_PERIOD_SECS = CONFIG_POLL_SECONDS  # type: ignore[misc]

    argv = ["run", str(APP), *streamlit_options(settings, port, address)]
    sys.argv = ["streamlit", *argv]
    return streamlit_cli.main.main(args=argv, prog_name="streamlit")
