"""Stage sources into DuckDB as text, one view per extract.

Every staged view has the extract's canonical columns as trimmed VARCHAR (blank =
NULL) plus ``_file`` and ``_line``, so that every later check can say where a row
came from. Nothing here judges the values; that is :mod:`pipelines.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.convert import quote
from pipelines.mapping import Profile, match_header
from pipelines.problems import ExtractError, Problem, error, warning
from pipelines.readers import Source
from pipelines.readers.textfile import as_windows_1252, record_lines
from pipelines.specs import Extract

REJECT_WORDS = {
    "TOO MANY COLUMNS": "the row has more values than the header has columns",
    "MISSING COLUMNS": "the row has fewer values than the header has columns",
    "UNQUOTED VALUE": "a value has a quote character in the middle without being quoted",
    "LINE SIZE OVER MAXIMUM": "the line is longer than the 2 MB a row may be",
    "INVALID ENCODING": "the line has bytes that are not valid text",
    "INVALID UNICODE": "the line has bytes that are not valid text",
}


@dataclass
class FileRecord:
    """What the load history keeps about one input."""

    label: str
    extract: str
    format: str
    path: Path | None
    rows: int = 0
    sha256: str = ""
    size_bytes: int = 0
    archived: str | None = None


@dataclass
class Staged:
    extract: Extract
    view: str
    rows: int = 0
    provided: set[str] = field(default_factory=set)
    merge: bool = False
    files: list[FileRecord] = field(default_factory=list)


def _select_list(extract: Extract, mapping: dict[int, str], prefix: str = "c") -> str:
    by_name = {name: index for index, name in mapping.items()}
    parts = []
    for col in extract.column_names:
        if col in by_name:
            parts.append(f"nullif(trim({prefix}{by_name[col]}), '') AS {quote(col)}")
        else:
            parts.append(f"CAST(NULL AS VARCHAR) AS {quote(col)}")
    return ", ".join(parts)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    # fetchall, not fetchone: DuckDB refuses con.register() while a result is unfinished.
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def _stage_csv(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    table: str,
    select: str,
    problems: list[Problem],
    max_examples: int,
) -> str | None:
    """Read a CSV into ``table``; return the SQL for its line numbers, or None on failure."""
    info = source.text
    assert info is not None
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(source.header))) + "}"
    path = str(info.path).replace("'", "''")
    delim = info.delimiter.replace("'", "''")
    rejects = f"{table}_rejects"
    try:
        con.execute(
            f"CREATE TABLE {table} AS SELECT {select} FROM read_csv('{path}', header=false, "
            f"skip={info.header_lines}, auto_detect=false, delim='{delim}', quote='\"', "
            f"escape='\"', columns={columns}, store_rejects=true, "
            f"rejects_table='{rejects}', rejects_scan='{rejects}_scan')"
        )
    except duckdb.Error as exc:
        problems.append(
            error(
                f"the file cannot be read as CSV ({str(exc).splitlines()[0][:200]})",
                "export it again from your MIS as CSV with a header row",
                file=source.label,
                extract=source.extract.name,
            )
        )
        return None
    rows = _count(con, table)
    bad = con.execute(f"SELECT line, error_type, csv_line FROM {rejects} ORDER BY line").fetchall()
    if info.encoding == "utf-8" and any(kind == "INVALID ENCODING" for _, kind, _ in bad):
        # Its head looked like UTF-8 but later bytes are not: read it as Windows-1252.
        try:
            as_windows_1252(info)
        except ExtractError as exc:
            problems.extend(exc.problems)
            return None
        for leftover in (table, rejects, f"{rejects}_scan"):
            con.execute(f"DROP TABLE IF EXISTS {leftover}")
        source.problems.append(
            warning(
                "read as windows-1252 (not UTF-8)",
                "nothing to do; exporting as 'CSV UTF-8' avoids any doubt about accents",
                file=source.label,
            )
        )
        problems.append(source.problems[-1])
        return _stage_csv(con, source, table, select, problems, max_examples)
    starts: list[int] | None = None
    if not info.simple_lines(rows + len(bad)):
        starts = record_lines(info)
    if bad:
        # Rejected rows are numbered with blank lines counted, unlike the rows read.
        lines_of = record_lines(info, blank=True) if starts is not None else None
        by_type: dict[str, list[int]] = {}
        for line, kind, _ in bad:
            record = int(line) - info.header_lines
            real = (
                lines_of[record - 1]
                if lines_of and 0 < record <= len(lines_of)
                else record + info.header_lines
            )
            by_type.setdefault(kind, []).append(real)
        for kind, lines in by_type.items():
            problems.append(
                error(
                    REJECT_WORDS.get(kind, kind.lower()),
                    f"every row needs exactly {len(source.header)} values, like the header; "
                    "check for a missing or extra delimiter, or quote values that contain "
                    f"'{info.delimiter}'",
                    file=source.label,
                    extract=source.extract.name,
                    line=lines[0],
                    count=len(lines),
                    lines=lines[:max_examples],
                )
            )
        return None
    if starts is None:
        return f"rowid + {info.header_lines + 1}"
    mapping = pd.DataFrame({"rec": range(len(starts)), "line": starts})
    con.register(f"{table}_map_df", mapping)
    con.execute(f"CREATE TABLE {table}_map AS SELECT * FROM {table}_map_df")
    con.unregister(f"{table}_map_df")
    return f"(SELECT m.line FROM {table}_map m WHERE m.rec = {table}.rowid)"


def stage_sources(
    con: duckdb.DuckDBPyConnection,
    sources: list[Source],
    profile: Profile | None,
    problems: list[Problem],
    max_examples: int,
) -> dict[str, Staged]:
    """Stage every source; problems found on the way are appended to ``problems``."""
    parts: dict[str, list[str]] = {}
    staged: dict[str, Staged] = {}
    for number, source in enumerate(sources):
        problems.extend(source.problems)
        extract = source.extract
        record = FileRecord(source.label, extract.name, source.format, source.path)
        entry = staged.setdefault(extract.name, Staged(extract, f"stg_{extract.name}"))
        entry.files.append(record)
        if source.merge:
            match_problems = []
            mapping = {i: h for i, h in enumerate(source.header)}
        else:
            match, match_problems = match_header(source.header, extract, profile, source.label)
            mapping = match.mapping
        problems.extend(match_problems)
        if any(p.severity == "error" for p in match_problems):
            continue
        table = f"raw_{number}"
        select = _select_list(extract, mapping)
        if source.text is not None:
            line_sql = _stage_csv(con, source, table, select, problems, max_examples)
            if line_sql is None:
                continue
        else:
            frame = source.frame
            assert frame is not None
            con.register("frame_df", frame)
            con.execute(f"CREATE TABLE {table} AS SELECT {select}, _line FROM frame_df")
            con.unregister("frame_df")
            line_sql = "_line"
        if source.scan is not None:
            scan = source.scan.wait()
            record.sha256, record.size_bytes = scan.sha256, scan.size
            record.archived = str(scan.archive_to) if scan.archive_to else None
        record.rows = _count(con, table)
        entry.rows += record.rows
        entry.provided |= set(mapping.values())
        entry.merge = entry.merge or source.merge
        label = source.label.replace("'", "''")
        cols = ", ".join(quote(c) for c in extract.column_names)
        parts.setdefault(extract.name, []).append(
            f"SELECT {cols}, '{label}' AS _file, CAST({line_sql} AS BIGINT) AS _line FROM {table}"
        )
    for name, selects in parts.items():
        con.execute(f"CREATE VIEW stg_{name} AS " + " UNION ALL ".join(selects))
    return {name: entry for name, entry in staged.items() if name in parts}
