"""Apply validated, staged extracts to the new generation attached as ``new``.

Snapshot extracts replace their table, event extracts upsert by key (an intraday
register refresh touches only its own rows), CTF sources merge the columns they
hold into existing rows, and the e-mail update sets ``students.email``.
"""

from __future__ import annotations

import duckdb

from pipelines.convert import load_expr, quote
from pipelines.problems import Problem, error, warning
from pipelines.specs import EXTRACTS, WAREHOUSE_EXTRACTS, create_table_sql
from pipelines.staging import Staged
from pipelines.validate import Context, lookup_table
from schoolcomms.warehouse import LOG_TABLE

META_TABLE = LOG_TABLE  # the load log, which rollback reads for lineage


def ensure_schema(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    """Create missing tables and columns (older generations gain new spec columns)."""
    for extract in WAREHOUSE_EXTRACTS:
        con.execute(create_table_sql(extract, schema))
        have = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ?",
                [schema, extract.name],
            ).fetchall()
        }
        for name, sqltype in extract.table_columns():
            if name not in have:
                con.execute(
                    f"ALTER TABLE {schema}.{quote(extract.name)} ADD COLUMN {quote(name)} {sqltype}"
                )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {schema}.{META_TABLE} (generation BIGINT, "
        "loaded_at TIMESTAMP, extracts VARCHAR[], rows BIGINT)"
    )


def prepare_merges(
    con: duckdb.DuckDBPyConnection, staged: dict[str, Staged], has_current: bool
) -> None:
    """For CTF (merge) sources, fill the columns a file lacks from the existing row."""
    for entry in staged.values():
        if not entry.merge or not has_current:
            continue
        extract = entry.extract
        on = " AND ".join(f"s.{quote(k)} = c.{quote(k)}" for k in extract.key)
        cols = ", ".join(
            f"coalesce(s.{quote(c)}, CAST(c.{quote(c)} AS VARCHAR)) AS {quote(c)}"
            for c in extract.column_names
        )
        view = f"stgm_{extract.name}"
        con.execute(
            f"CREATE VIEW {view} AS SELECT {cols}, s._file, s._line "
            f"FROM {entry.view} s LEFT JOIN cur.{quote(extract.name)} c ON {on}"
        )
        entry.view = view


def match_email_updates(ctx: Context) -> list[Problem]:
    """Match each row of a student_emails file to exactly one pupil, by UPN or ADNO."""
    entry = ctx.staged.get("student_emails")
    if entry is None:
        return []
    key = "upn" if "upn" in entry.provided else "adno" if "adno" in entry.provided else None
    where = {"extract": "student_emails", "file": entry.files[0].label if entry.files else ""}
    if key is None:
        return [
            error(
                "the file has neither an adno nor a upn column",
                "add a column headed adno or upn to say which pupil each address is for",
                line=1,
                **where,
            )
        ]
    pupils = []
    if "students" in ctx.staged:
        pupils.append(f"SELECT student_id, upn, adno FROM {ctx.staged['students'].view}")
    elif ctx.has_current:
        pupils.append("SELECT student_id, upn, adno FROM cur.students")
    if not pupils:
        return [
            error(
                "there are no pupils to match the addresses to",
                "load the students extract first",
                **where,
            )
        ]
    ctx.con.execute(
        f"CREATE TEMP TABLE email_matches AS SELECT e._file, e._line, e.{key} AS k, e.email, "
        f"count(p.student_id) AS n, min(p.student_id) AS student_id "
        f"FROM {entry.view} e LEFT JOIN ({pupils[0]}) p "
        f"ON upper(trim(p.{key})) = upper(e.{key}) GROUP BY ALL"
    )
    out = []
    for condition, text, fix in [
        ("k IS NULL", f"the {key} cell is blank", f"fill in the pupil's {key}"),
        (
            "k IS NOT NULL AND n = 0",
            f"matches no pupil by {key}",
            f"check the {key}; the pupil may have left or not be loaded yet",
        ),
        (
            "n > 1",
            f"matches more than one pupil by {key}",
            f"{key} should be unique: correct the pupils' records in the MIS, or use "
            f"{'adno' if key == 'upn' else 'upn'} instead",
        ),
    ]:
        rows = ctx.con.execute(
            f"SELECT _file, _line, k, count(*) OVER () FROM email_matches WHERE {condition} "
            f"ORDER BY _line LIMIT {ctx.max_examples}"
        ).fetchall()
        if rows:
            out.append(
                error(
                    text,
                    fix,
                    file=rows[0][0],
                    extract="student_emails",
                    line=rows[0][1],
                    column=key,
                    value=rows[0][2],
                    count=rows[0][3],
                    lines=[r[1] for r in rows],
                )
            )
    dupes = ctx.con.execute(
        "SELECT student_id, list(_line ORDER BY _line) FROM email_matches WHERE n = 1 "
        f"GROUP BY student_id HAVING count(*) > 1 LIMIT {ctx.max_examples}"
    ).fetchall()
    for student, lines in dupes:
        out.append(
            error(
                f"pupil {student} has more than one row",
                "keep one address per pupil",
                line=lines[0],
                column=key,
                lines=lines,
                count=len(lines),
                **where,
            )
        )
    return out


def _typed_select(entry: Staged) -> str:
    extract = entry.extract
    parts = []
    joins = []
    for col in extract.columns:
        parts.append(f"{load_expr(col, 's.' + quote(col.name))} AS {quote(col.name)}")
        if col.type == "phone":
            alias = f"p_{col.name}"
            joins.append(
                f"LEFT JOIN {lookup_table(extract.name, col.name)} {alias} "
                f"ON {alias}.raw = s.{quote(col.name)}"
            )
            parts.append(f"{alias}.good AS {quote(col.name + '_e164')}")
    return f"SELECT {', '.join(parts)} FROM {entry.view} s {' '.join(joins)}"


def _ensure_lookups(con: duckdb.DuckDBPyConnection, entry: Staged) -> None:
    # Lookups are made by validation; an extract with no phone values still needs one.
    for col in entry.extract.columns:
        if col.type == "phone":
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {lookup_table(entry.extract.name, col.name)} "
                "(raw VARCHAR, good VARCHAR)"
            )


def apply_all(
    con: duckdb.DuckDBPyConnection, staged: dict[str, Staged], has_current: bool
) -> list[Problem]:
    """Write every staged extract into ``new``; return warnings about orphaned history."""
    replaced = []
    # Updates (student_emails) last, so they change the students this load writes.
    for name, entry in sorted(staged.items(), key=lambda item: item[1].extract.kind == "update"):
        extract = entry.extract
        target = f"new.{quote(name)}"
        if extract.kind == "update":
            con.execute(
                "UPDATE new.students SET email = m.email FROM "
                "(SELECT student_id, email FROM email_matches WHERE n = 1) m "
                "WHERE new.students.student_id = m.student_id"
            )
            continue
        _ensure_lookups(con, entry)
        columns = ", ".join(quote(c) for c, _ in extract.table_columns())
        if extract.kind == "snapshot" and not entry.merge:
            con.execute(f"DELETE FROM {target}")
            replaced.append(name)
        elif con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]:
            on = " AND ".join(
                f"t.{quote(k)} IS NOT DISTINCT FROM s.{quote(k)}" for k in extract.key
            )
            keys = ", ".join(quote(k) for k in extract.key)
            con.execute(
                f"DELETE FROM {target} t USING (SELECT {keys} FROM {entry.view}) s WHERE {on}"
            )
        con.execute(f"INSERT INTO {target} ({columns}) {_typed_select(entry)}")
    return orphaned_history(con, replaced)


def orphaned_history(con: duckdb.DuckDBPyConnection, replaced: list[str]) -> list[Problem]:
    """Warn about kept rows that point at rows a snapshot no longer holds."""
    out = []
    for extract in WAREHOUSE_EXTRACTS:
        for col in extract.columns:
            ref = col.ref
            if ref is None or ref.extract not in replaced or ref.severity != "error":
                continue
            rows = con.execute(
                f"SELECT count(*), count(DISTINCT e.{quote(col.name)}), "
                f"min(e.{quote(col.name)}) FROM new.{quote(extract.name)} e "
                f"WHERE e.{quote(col.name)} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                f"new.{quote(ref.extract)} t WHERE t.{quote(ref.column)} = e.{quote(col.name)})"
            ).fetchone()
            if rows[0]:
                out.append(
                    warning(
                        f"{rows[0]:,} {extract.name} row(s) for {rows[1]:,} {ref.column}(s) no "
                        f"longer in {ref.extract} are kept as history (e.g. {rows[2]})",
                        "nothing to do if those pupils have left; otherwise include them in the "
                        f"{ref.extract} extract",
                        extract=extract.name,
                        column=col.name,
                        count=rows[0],
                    )
                )
    return out


def record_generation(
    con: duckdb.DuckDBPyConnection, generation: int, staged: dict[str, Staged]
) -> None:
    # Local UK time, like every other timestamp in the warehouse.
    con.execute(
        f"INSERT INTO new.{META_TABLE} VALUES (?, timezone('Europe/London', now()), ?, ?)",
        [generation, sorted(staged), sum(e.rows for e in staged.values())],
    )


__all__ = ["EXTRACTS", "apply_all", "ensure_schema", "match_email_updates", "prepare_merges"]
