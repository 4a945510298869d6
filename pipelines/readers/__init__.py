"""Readers turn files (CSV, XLSX, CTF XML) and SQL queries into :class:`Source` objects.

A source is one extract's rows from one place, with its header as found. CSV files
are read by DuckDB itself (fast, streamed); the others arrive as a DataFrame of
strings with positional columns ``c0…cN`` and a ``_line`` column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.problems import Problem
from pipelines.readers.textfile import FileScan, TextInfo
from pipelines.specs import Extract


@dataclass
class Source:
    """Rows for one extract from one file, sheet or query, not yet staged."""

    extract: Extract
    label: str
    format: str  # "csv", "xlsx", "ctf", "sql"
    path: Path | None
    header: list[str]
    text: TextInfo | None = None
    frame: pd.DataFrame | None = None
    # CTF upserts only the columns it holds, keeping the rest of existing rows.
    merge: bool = False
    problems: list[Problem] = field(default_factory=list)
    # Hash, size and archive copy of the file, made in the background.
    scan: FileScan | None = None


def cell_text(value: Any) -> str | None:
    """A spreadsheet or database value as the text a CSV export would hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, pd.Timestamp):
        return cell_text(value.to_pydatetime())
    text = str(value)
    return text if text.strip() else None


def positional_frame(rows: list[list[Any]], width: int, lines: list[int]) -> pd.DataFrame:
    """Rows of cells → DataFrame with string columns c0..c{width-1} and ``_line``."""
    data: dict[str, list[str | None]] = {f"c{i}": [] for i in range(width)}
    for row in rows:
        for i in range(width):
            data[f"c{i}"].append(cell_text(row[i]) if i < len(row) else None)
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()})
    frame["_line"] = pd.Series(lines, dtype="int64")
    return frame
