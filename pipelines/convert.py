"""SQL that turns staged text into typed values, shared by validation and loading.

Validation finds the cells where ``parse(value)`` is NULL although the value is not;
loading inserts ``parse(value)``. One definition, so the two can never disagree.
"""

from __future__ import annotations

from pipelines.specs import Column

DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]
TIME_FORMATS = ["%H:%M", "%H:%M:%S"]
TIMESTAMP_FORMATS = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S",
]
# strptime alone is too lenient: it reads '3/9/26' as the year 26, '9:5' as 09:05. Each
# value must also have the shape the contract names (four-digit years, two-digit minutes).
_DATE = r"([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4})"
_TIME = r"[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?"
SHAPES = {
    "date": _DATE,
    "time": _TIME,
    "timestamp": _DATE + "[ T]" + _TIME,
    # try_cast rounds '7.5' to 8 and reads '1e3' and '0x10': whole numbers only.
    "int": r"[+-]?[0-9]+(\.0+)?",
}
TRUE_WORDS = ("y", "yes", "true", "1")
FALSE_WORDS = ("n", "no", "false", "0")


def _list(formats: list[str]) -> str:
    return "[" + ", ".join(f"'{f}'" for f in formats) + "]"


def _words(words: tuple[str, ...]) -> str:
    return ", ".join(f"'{w}'" for w in words)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parse_expr(column: Column, ref: str, trusted: bool = False) -> str | None:
    """SQL for the typed value of ``ref`` (a staged VARCHAR), or None for plain text.

    ``trusted`` leaves out the shape check, for values that validation has already
    checked with the full expression (the load itself), where it would only cost time.
    """
    kind = column.type
    if kind == "date":
        parsed = f"CAST(try_strptime({ref}, {_list(DATE_FORMATS)}) AS DATE)"
    elif kind == "time":
        parsed = f"CAST(try_strptime({ref}, {_list(TIME_FORMATS)}) AS TIME)"
    elif kind == "timestamp":
        parsed = f"try_strptime({ref}, {_list(TIMESTAMP_FORMATS)})"
    elif kind == "int":
        parsed = f"try_cast({ref} AS BIGINT)"
    else:
        parsed = None
    if parsed is not None:
        if trusted:
            return parsed
        return f"CASE WHEN regexp_full_match({ref}, '{SHAPES[kind]}') THEN {parsed} END"
    if kind == "bool":
        return (
            f"CASE WHEN lower({ref}) IN ({_words(TRUE_WORDS)}) THEN TRUE "
            f"WHEN lower({ref}) IN ({_words(FALSE_WORDS)}) THEN FALSE END"
        )
    if kind == "enum":
        values = ", ".join(f"'{v}'" for v in column.values)
        return f"CASE WHEN lower({ref}) IN ({values}) THEN lower({ref}) END"
    return None


def load_expr(column: Column, ref: str) -> str:
    """SQL for the value to store: the parsed value, with the column default when blank.

    Only used on values that passed validation, so the shape check is not repeated.
    """
    source = ref
    if column.default is not None:
        source = f"coalesce({ref}, '{column.default}')"
    parsed = parse_expr(column, source, trusted=True)
    if parsed is not None:
        return parsed
    if column.type == "code":
        return f"upper({source})"
    return source


EXPECTED: dict[str, str] = {
    "date": "a date as YYYY-MM-DD or DD/MM/YYYY",
    "time": "a time as HH:MM (24-hour), seconds optional",
    "timestamp": "a date and time as YYYY-MM-DD HH:MM or DD/MM/YYYY HH:MM (24-hour)",
    "int": "a whole number",
    "bool": "Y or N (also Yes/No, true/false, 1/0)",
}
