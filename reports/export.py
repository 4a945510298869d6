"""Downloads: report tables as CSV that Excel opens safely and correctly."""

from __future__ import annotations

from typing import Any

import pandas as pd

# A cell starting with one of these could be run as a formula by a spreadsheet
# (CSV injection); such cells get a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` if its text starts like a formula, else unchanged."""
    if value is None or isinstance(value, bool):
        return value
    try:
        if pd.isna(value):
            return value
    except (TypeError, ValueError):
        pass
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return value


def csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """``frame`` as UTF-8 CSV with a byte order mark, formula-like cells escaped.

    Every cell (and header) whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or
    a carriage return gets a leading ``'`` so that a spreadsheet shows it as text
    instead of running it (this includes negative numbers and ``+44…`` phone numbers).
    The BOM makes Excel read the file as UTF-8; rows end with CRLF.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        # Vectorised: the text of every non-missing cell, checked at once (no per-cell Python).
        present = values.notna()
        text = values.astype(str)
        risky = present & text.str.startswith(FORMULA_PREFIXES)
        if risky.any():
            out[column] = values.astype(object).where(~risky, "'" + text)
    out.columns = [escape_cell(str(c)) for c in out.columns]
    text = out.to_csv(index=index, lineterminator="\r\n")
    return text.encode("utf-8-sig")


__all__ = ["FORMULA_PREFIXES", "csv_bytes", "escape_cell"]
