"""The state of the warehouse and the history of loads, for the Data loads page.

``warehouse_status`` reads the current generation; the load history comes from the ops
store through :mod:`schoolcomms.ops.history`. ``problems_frame`` turns a fresh load
report's problems into the same table the history shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine

from schoolcomms.ops import history
from schoolcomms.warehouse import Warehouse

# The columns of a validation report table, in display order.
PROBLEM_TABLE_COLUMNS = ["severity", "file", "line", "column", "value", "problem", "fix", "count"]
_SEVERITY_ORDER = {"error": 0, "warning": 1}


def warehouse_status(warehouse: Warehouse) -> dict[str, Any]:
    """What is loaded: the current generation, the generations on disk, when and how much.

    Keys: ``generation`` (int or None before the first load), ``generations`` (every
    generation kept on disk, oldest first), ``previous`` (the generation a rollback
    would make current, or None), ``loaded_at`` (naive datetime from the table
    ``_generations``, or None), ``extracts`` (the extracts that load brought, a list)
    and ``rows`` (a dict: table name → row count, tables in name order; internal
    tables whose name starts with ``_`` left out).
    """
    generation = warehouse.generation()
    generations = warehouse.generations()
    status: dict[str, Any] = {
        "generation": generation,
        "generations": generations,
        "previous": None,
        "loaded_at": None,
        "extracts": [],
        "rows": {},
    }
    if generation is None:
        return status
    older = [g for g in generations if g < generation]
    status["previous"] = older[-1] if older else None
    tables = warehouse.query(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' ORDER BY table_name"
    )["table_name"].tolist()
    if "_generations" in tables:
        meta = warehouse.query(
            "SELECT loaded_at, extracts FROM _generations WHERE generation = ? "
            "ORDER BY loaded_at DESC LIMIT 1",
            [generation],
        )
        if not meta.empty:
            loaded_at = meta["loaded_at"].iloc[0]
            status["loaded_at"] = (
                None if pd.isna(loaded_at) else pd.Timestamp(loaded_at).to_pydatetime()
            )
            extracts = meta["extracts"].iloc[0]
            status["extracts"] = [] if extracts is None else [str(e) for e in extracts]
    data_tables = [t for t in tables if not t.startswith("_")]
    if data_tables:
        counts = warehouse.query(
            " UNION ALL ".join(
                f"SELECT '{_literal(t)}' AS table_name, count(*) AS n FROM {_ident(t)}"
                for t in data_tables
            )
        )
        status["rows"] = {str(r.table_name): int(r.n) for r in counts.itertuples()}
        status["rows"] = dict(sorted(status["rows"].items()))
    return status


def row_counts_frame(status: Mapping[str, Any]) -> pd.DataFrame:
    """The ``rows`` of :func:`warehouse_status` as a table (``table``, ``rows``)."""
    rows = status.get("rows") or {}
    return pd.DataFrame(
        {"table": list(rows), "rows": [int(n) for n in rows.values()]}, columns=["table", "rows"]
    )


def load_history(engine: Engine, limit: int = 50) -> pd.DataFrame:
    """The latest load runs (rollbacks included), newest first.

    See :func:`schoolcomms.ops.history.recent_loads` for the columns.
    """
    return history.recent_loads(engine, limit=limit)


def load_problems(engine: Engine, load_run_id: int) -> pd.DataFrame:
    """The stored problems of one past load, as a report table, errors first.

    Columns: :data:`PROBLEM_TABLE_COLUMNS`. Raises ``LookupError`` for an unknown id.
    """
    return problems_frame(history.load_problems(engine, int(load_run_id)).to_dict("records"))


def problems_frame(problems: Iterable[Mapping[str, Any] | Any]) -> pd.DataFrame:
    """Problems (dicts or :class:`pipelines.problems.Problem`) as a report table.

    Columns: :data:`PROBLEM_TABLE_COLUMNS`; errors first, then warnings, each in the
    order given. ``line`` and ``count`` are nullable integers.
    """
    rows = []
    for problem in problems:
        data = problem.as_dict() if hasattr(problem, "as_dict") else dict(problem)
        rows.append({column: data.get(column) for column in PROBLEM_TABLE_COLUMNS})
    frame = pd.DataFrame(rows, columns=PROBLEM_TABLE_COLUMNS)
    if frame.empty:
        return frame.astype({"line": "Int64", "count": "Int64"})
    order = frame["severity"].map(_SEVERITY_ORDER).fillna(2)
    frame = frame.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order")
    for column in ("line", "count"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("severity", "file", "column", "value", "problem", "fix"):
        frame[column] = frame[column].map(lambda v: None if _missing(v) else str(v))
    return frame.reset_index(drop=True)


def describe_run(run: Mapping[str, Any], tz: str = "Europe/London") -> str:
    """A one-line label for a load run row of :func:`load_history` (for a selectbox).

    The start time is shown in ``tz`` (UK time by default).
    """
    started = run.get("started_at")
    if isinstance(started, dt.datetime):
        if started.tzinfo is not None:
            started = started.astimezone(ZoneInfo(tz))
        when = started.strftime("%d/%m/%Y %H:%M")
    else:
        when = "?"
    files = run.get("files") or "no files"
    return (
        f"#{run.get('id')} · {when} · {run.get('status')} · "
        f"{run.get('error_count', 0)} error(s), {run.get('warning_count', 0)} warning(s) · "
        f"{files}"
    )


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(name: str) -> str:
    return name.replace("'", "''")


__all__ = [
    "PROBLEM_TABLE_COLUMNS",
    "describe_run",
    "load_history",
    "load_problems",
    "problems_frame",
    "row_counts_frame",
    "warehouse_status",
]
