"""Validation: every rule of the loading contract, run as SQL over the staged views.

Each rule returns :class:`Problem` objects naming file, line, column and value, what
is wrong and how to fix it, with a count when many rows share the problem.
Value checks that need Python libraries (phone numbers, e-mail syntax, UPN check
letters) run once per distinct value and leave lookup tables that the load joins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb
import pandas as pd
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from pipelines.convert import EXPECTED, parse_expr, quote
from pipelines.problems import Problem, error, warning
from pipelines.specs import EXTRACTS, Column, Extract
from pipelines.staging import Staged
from schoolcomms.codes import CATEGORIES, WITHDRAWN, code_table

MONTH_FIRST = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})")
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
DOCS = "docs/extracts.md"


@dataclass
class Context:
    con: duckdb.DuckDBPyConnection
    staged: dict[str, Staged]
    has_current: bool
    max_examples: int
    extra_codes: str = ""


def _examples(
    ctx: Context, view: str, where: str, value_sql: str = "NULL", order: str = "_line"
) -> tuple[int, list[tuple[str, int | None, str | None]]]:
    count = ctx.con.execute(f"SELECT count(*) FROM {view} WHERE {where}").fetchone()[0]
    if not count:
        return 0, []
    rows = ctx.con.execute(
        f"SELECT _file, _line, CAST({value_sql} AS VARCHAR) FROM {view} WHERE {where} "
        f"ORDER BY _file, {order} LIMIT {ctx.max_examples}"
    ).fetchall()
    return count, rows


def _problem(
    make: Callable[..., Problem],
    extract: Extract,
    column: str,
    count: int,
    rows: list[tuple[str, int | None, str | None]],
    text: str,
    fix: str,
) -> Problem:
    first_file, first_line, first_value = rows[0]
    return make(
        text,
        fix,
        file=first_file,
        extract=extract.name,
        line=first_line,
        column=column,
        value=first_value,
        count=count,
        lines=[r[1] for r in rows if r[1] is not None],
    )


def check_rows(ctx: Context, staged: Staged) -> list[Problem]:
    if staged.rows:
        return []
    return [
        error(
            "the file has a header but no rows",
            "export the extract again with its rows; leave the file out if there is "
            "nothing to load (an empty snapshot would empty the table)",
            file=f.label,
            extract=staged.extract.name,
            line=2,
        )
        for f in staged.files
    ]


def check_required(ctx: Context, staged: Staged) -> list[Problem]:
    out = []
    for col in staged.extract.columns:
        if not col.required:
            continue
        count, rows = _examples(ctx, staged.view, f"{quote(col.name)} IS NULL")
        if count:
            out.append(
                _problem(
                    error,
                    staged.extract,
                    col.name,
                    count,
                    rows,
                    f"the required cell {col.name} is blank",
                    f"fill in {col.name} on every row",
                )
            )
    return out


def _type_problem(col: Column, value: str | None) -> tuple[str, str]:
    if col.type == "date" or col.type == "timestamp":
        match = MONTH_FIRST.match(value or "")
        if match and int(match.group(1)) <= 12 < int(match.group(2)):
            return (
                "this date is month-first (US style); dates must be day-first",
                "export dates as DD/MM/YYYY or YYYY-MM-DD; check the whole column, "
                "because day-first and month-first dates look alike up to the 12th",
            )
    if col.type == "time" and value and re.match(r"^\d{1,2}:\d{2}\s*[ap]m$", value, re.I):
        return ("times must be 24-hour", "write 13:30, not 1:30pm")
    if col.type == "enum":
        return (f"must be one of: {', '.join(col.values)}", f"use one of {', '.join(col.values)}")
    return (f"is not {EXPECTED[col.type]}", f"write {EXPECTED[col.type]}")


def check_types(ctx: Context, staged: Staged) -> list[Problem]:
    out = []
    for col in staged.extract.columns:
        parsed = parse_expr(col, quote(col.name))
        if parsed is None:
            continue
        where = f"{quote(col.name)} IS NOT NULL AND ({parsed}) IS NULL"
        count, rows = _examples(ctx, staged.view, where, quote(col.name))
        if not count:
            continue
        # Month-first dates get their own message, the rest the generic one.
        groups: dict[tuple[str, str], list[tuple[str, int | None, str | None]]] = {}
        for row in rows:
            groups.setdefault(_type_problem(col, row[2]), []).append(row)
        for (text, fix), grouped in groups.items():
            share = count if len(groups) == 1 else len(grouped)
            out.append(_problem(error, staged.extract, col.name, share, grouped, text, fix))
    return out


def check_times_order(ctx: Context, staged: Staged) -> list[Problem]:
    extract = staged.extract
    if "start_time" not in extract.column_names or "end_time" not in extract.column_names:
        return []
    start = parse_expr(extract.column("start_time"), quote("start_time"))
    end = parse_expr(extract.column("end_time"), quote("end_time"))
    count, rows = _examples(
        ctx, staged.view, f"({end}) <= ({start})", "start_time || ' to ' || end_time"
    )
    if not count:
        return []
    return [
        _problem(
            error,
            extract,
            "end_time",
            count,
            rows,
            "the end time is not after the start time",
            "correct the times; a lesson must end after it starts",
        )
    ]


def check_keys(ctx: Context, staged: Staged) -> list[Problem]:
    extract = staged.extract
    if extract.kind == "update":
        return []
    keys = ", ".join(quote(k) for k in extract.key)
    # Group on a 64-bit hash of the key first (much cheaper than the strings); only
    # keys whose hash repeats are compared exactly, and lines are fetched only for
    # the true duplicates.
    ctx.con.execute(
        f"CREATE OR REPLACE TEMP TABLE dup_hashes AS SELECT hash({keys}) AS h "
        f"FROM {staged.view} GROUP BY h HAVING count(*) > 1"
    )
    if not ctx.con.execute("SELECT count(*) FROM dup_hashes").fetchall()[0][0]:
        return []
    ctx.con.execute(
        f"CREATE OR REPLACE TEMP TABLE dup_keys AS SELECT {keys} "
        f"FROM {staged.view} WHERE hash({keys}) IN (SELECT h FROM dup_hashes) "
        f"GROUP BY ALL HAVING count(*) > 1"
    )
    total = ctx.con.execute("SELECT count(*) FROM dup_keys").fetchone()[0]
    if not total:
        return []
    on = " AND ".join(f"d.{quote(k)} IS NOT DISTINCT FROM v.{quote(k)}" for k in extract.key)
    dupes = ctx.con.execute(
        f"SELECT concat_ws(' / ', {', '.join('v.' + quote(k) for k in extract.key)}), "
        f"list(v._file ORDER BY v._file, v._line), list(v._line ORDER BY v._file, v._line) "
        f"FROM (SELECT * FROM dup_keys LIMIT {ctx.max_examples}) d JOIN {staged.view} v ON {on} "
        f"GROUP BY ALL ORDER BY min(v._line)"
    ).fetchall()
    out = []
    for value, files, lines in dupes:
        places = ", ".join(
            f"{f} line {n}" if n is not None else f for f, n in zip(files, lines, strict=True)
        )
        out.append(
            error(
                f"the key ({', '.join(extract.key)}) appears more than once: at {places}",
                "keep one row per key; remove or correct the duplicate rows",
                file=files[0],
                extract=extract.name,
                line=lines[0],
                column=", ".join(extract.key),
                value=value,
                count=len(lines),
                lines=[n for n in lines if n is not None],
            )
        )
    if total > len(dupes):
        out.append(
            error(
                f"{total - len(dupes):,} more duplicated keys are not listed",
                "remove the duplicate rows",
                extract=extract.name,
                column=", ".join(extract.key),
                count=total - len(dupes),
            )
        )
    return out


def _target_keys(ctx: Context, extract: str, column: str) -> str:
    parts = []
    if extract in ctx.staged:
        parts.append(f"SELECT {quote(column)} AS k FROM {ctx.staged[extract].view}")
    if ctx.has_current:
        parts.append(f"SELECT {quote(column)} AS k FROM cur.{quote(extract)}")
    if not parts:
        return "SELECT CAST(NULL AS VARCHAR) AS k WHERE FALSE"
    return " UNION ".join(parts)


def check_references(ctx: Context, staged: Staged) -> list[Problem]:
    out = []
    for col in staged.extract.columns:
        ref = col.ref
        if ref is None:
            continue
        name = ctx.con.execute("SELECT 'refs_' || CAST(nextval('refseq') AS VARCHAR)").fetchone()[0]
        ctx.con.execute(f"CREATE TEMP TABLE {name} AS {_target_keys(ctx, ref.extract, ref.column)}")
        where = (
            f"{quote(col.name)} IS NOT NULL AND {quote(col.name)} NOT IN "
            f"(SELECT k FROM {name} WHERE k IS NOT NULL)"
        )
        count, rows = _examples(ctx, staged.view, where, quote(col.name))
        ctx.con.execute(f"DROP TABLE {name}")
        if not count:
            continue
        make = error if ref.severity == "error" else warning
        out.append(
            _problem(
                make,
                staged.extract,
                col.name,
                count,
                rows,
                f"points at no {ref.extract} row (no {ref.column} with this value in this load "
                "or the warehouse)",
                f"load the {ref.extract} extract with this {ref.column} in the same load, or "
                f"correct the value" + ("" if make is error else "; the row is loaded anyway"),
            )
        )
    return out


def check_codes(ctx: Context, staged: Staged) -> list[Problem]:
    out = []
    known = {code for code, *_ in code_table(ctx.extra_codes)}
    for col in staged.extract.columns:
        if col.type != "code":
            continue
        counts = ctx.con.execute(
            f"SELECT upper({quote(col.name)}) AS code, count(*) FROM {staged.view} "
            f"WHERE {quote(col.name)} IS NOT NULL GROUP BY 1"
        ).fetchall()
        for code, _ in counts:
            literal = code.replace("'", "''")
            where = f"upper({quote(col.name)}) = '{literal}'"
            if code not in known:
                count, rows = _examples(ctx, staged.view, where, quote(col.name))
                out.append(
                    _problem(
                        error,
                        staged.extract,
                        col.name,
                        count,
                        rows,
                        f"{code!r} is not an attendance code",
                        f"if {code!r} is your school's own code, add it to the setting "
                        f"extra_attendance_codes as '{code}:category' (categories: "
                        f"{', '.join(CATEGORIES)}); otherwise correct the mark",
                    )
                )
            elif code in WITHDRAWN and code not in _school_codes(ctx):
                count, rows = _examples(ctx, staged.view, where, quote(col.name))
                out.append(
                    _problem(
                        warning,
                        staged.extract,
                        col.name,
                        count,
                        rows,
                        f"{code!r} was withdrawn in August 2024 ({WITHDRAWN[code][1]})",
                        "use the current DfE code for new marks; old marks load as they are",
                    )
                )
    return out


def _school_codes(ctx: Context) -> set[str]:
    return {code for code, _, _, origin in code_table(ctx.extra_codes) if origin == "school"}


def _python_check(
    ctx: Context,
    staged: Staged,
    col: Column,
    judge: Callable[[str], str | None],
    lookup: str | None,
) -> list[str]:
    """Judge each distinct value in Python; return the bad ones. Fills a lookup table."""
    values = [
        v
        for (v,) in ctx.con.execute(
            f"SELECT DISTINCT {quote(col.name)} FROM {staged.view} "
            f"WHERE {quote(col.name)} IS NOT NULL"
        ).fetchall()
    ]
    results = {v: judge(v) for v in values}
    if lookup:
        frame = pd.DataFrame(
            {
                "raw": pd.Series(list(results), dtype=object),
                "good": pd.Series(list(results.values()), dtype=object),
            }
        )
        ctx.con.register("lookup_df", frame)
        ctx.con.execute(f"CREATE OR REPLACE TABLE {lookup} AS SELECT * FROM lookup_df")
        ctx.con.unregister("lookup_df")
    return [v for v, good in results.items() if good is None]


def e164(value: str) -> str | None:
    """A phone number in E.164 if libphonenumber (region GB) says it is valid, else None."""
    try:
        number = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_ok(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def upn_ok(value: str) -> str | None:
    """The UPN if its check letter is right (DfE algorithm), else None."""
    upn = value.strip().upper()
    if not re.fullmatch(r"[A-Z]\d{11}[0-9A-Z]", upn):
        return None

    def worth(ch: str) -> int:
        return int(ch) if ch.isdigit() else UPN_LETTERS.index(ch) if ch in UPN_LETTERS else -99

    total = sum(worth(ch) * weight for weight, ch in enumerate(upn[1:], start=2))
    return upn if total >= 0 and UPN_LETTERS[total % 23] == upn[0] else None


def lookup_table(extract: str, column: str) -> str:
    return f"lookup_{extract}_{column}"


def _in_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def check_python_values(ctx: Context, staged: Staged) -> list[Problem]:
    out = []
    strict = staged.extract.kind == "update"
    for col in staged.extract.columns:
        if col.type == "phone":
            judge, lookup = e164, lookup_table(staged.extract.name, col.name)
            text = "is not a valid phone number (stored as given; no E.164 form)"
            fix = "correct the number in the MIS; UK numbers have 10 or 11 digits"
        elif col.type == "email":
            judge, lookup = email_ok, None
            text = "is not a valid e-mail address"
            fix = "correct the address in the MIS"
        elif col.type == "upn":
            judge, lookup = upn_ok, None
            text = "has a wrong UPN check letter (or is not 13 characters)"
            fix = "check the UPN against the pupil's record; the first letter is a checksum"
        else:
            continue
        bad = _python_check(ctx, staged, col, judge, lookup)
        if not bad:
            continue
        # Chunk the IN list so a file full of bad numbers still makes a small query.
        where = f"{quote(col.name)} IN ({_in_list(bad[:5000])})"
        count, rows = _examples(ctx, staged.view, where, quote(col.name))
        if len(bad) > 5000:
            count = max(count, len(bad))
        make = error if strict else warning
        out.append(
            _problem(
                make,
                staged.extract,
                col.name,
                count,
                rows,
                text,
                fix + ("" if strict else "; the row is loaded anyway"),
            )
        )
    return out


def check_contacts_agree(ctx: Context, staged: Staged) -> list[Problem]:
    if staged.extract.name != "contacts":
        return []
    fields = ["title", "forename", "surname", "mobile", "email", "home_phone"]
    tuple_sql = ", ".join(f"coalesce({quote(f)}, '')" for f in fields)
    rows = ctx.con.execute(
        f"SELECT contact_id, list(_file ORDER BY _line), list(_line ORDER BY _line) "
        f"FROM {staged.view} GROUP BY contact_id "
        f"HAVING count(DISTINCT ({tuple_sql})) > 1 LIMIT {ctx.max_examples}"
    ).fetchall()
    return [
        error(
            f"contact {cid} has different details on different rows (lines "
            f"{', '.join(str(n) for n in lines)})",
            "a contact linked to several pupils must have the same name, phones and e-mail "
            "on each row; correct the rows so they agree",
            file=files[0],
            extract="contacts",
            line=lines[0],
            column="contact_id",
            value=cid,
            count=len(lines),
            lines=[n for n in lines if n is not None],
        )
        for cid, files, lines in rows
    ]


RULES = [
    check_required,
    check_types,
    check_times_order,
    check_keys,
    check_references,
    check_codes,
    check_python_values,
    check_contacts_agree,
]


def validate(ctx: Context) -> list[Problem]:
    """Run every rule on every staged extract; return the problems in order."""
    ctx.con.execute("CREATE SEQUENCE IF NOT EXISTS refseq")
    problems: list[Problem] = []
    for name in EXTRACTS:
        staged = ctx.staged.get(name)
        if staged is None:
            continue
        empty = check_rows(ctx, staged)
        if empty:
            problems.extend(empty)
            continue
        for rule in RULES:
            problems.extend(rule(ctx, staged))
    return problems
