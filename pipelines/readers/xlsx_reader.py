"""Excel workbooks: the sheet named like the extract, or the first sheet.

A workbook whose sheets are named like extracts (``students``, ``contacts`` …) loads
each of those sheets; otherwise the file name says which extract the first sheet is.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl

from pipelines.mapping import Profile, extract_for_file
from pipelines.problems import ExtractError, error, warning
from pipelines.readers import Source, positional_frame


def read_xlsx(path: Path, label: str, profile: Profile | None) -> list[Source]:
    """Read the extract sheet(s) of a workbook."""
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ExtractError(
            error(
                f"the file is not a readable Excel workbook ({exc.__class__.__name__})",
                "open it in Excel and save it again as .xlsx, or export the extract as CSV",
                file=label,
            )
        ) from exc
    try:
        names = book.sheetnames
        by_file = extract_for_file(path.stem, profile)
        by_sheet = {name: extract_for_file(name, profile) for name in names}
        chosen: list[tuple[str, object]] = []
        notes = []
        if by_file is not None:
            sheet = next((n for n in names if by_sheet[n] is by_file), names[0])
            chosen.append((sheet, by_file))
            others = [n for n in names if n != sheet]
            if others:
                notes.append(
                    warning(
                        f"the workbook has other sheets that were not read: {', '.join(others)}",
                        f"nothing to do if sheet {sheet!r} holds the {by_file.name} extract",
                        file=label,
                    )
                )
        else:
            chosen = [(n, e) for n, e in by_sheet.items() if e is not None]
            if not chosen:
                raise ExtractError(
                    error(
                        f"cannot tell which extract this workbook holds: neither the file name "
                        f"nor any sheet ({', '.join(names)}) names one",
                        "name the file or the sheet after the extract, e.g. students.xlsx or "
                        "a sheet called 'marks' (see docs/extracts.md)",
                        file=label,
                    )
                )
        sources = []
        for sheet_name, extract in chosen:
            sources.append(_read_sheet(book[sheet_name], extract, path, f"{label} [{sheet_name}]"))
        if sources:
            sources[0].problems.extend(notes)
        return sources
    finally:
        book.close()


def _read_sheet(sheet, extract, path: Path, label: str) -> Source:  # type: ignore[no-untyped-def]
    rows = sheet.iter_rows(values_only=True)
    header_row = next(rows, None)
    if header_row is None or not any(v is not None for v in header_row):
        raise ExtractError(
            error(
                "the sheet is empty or its first row is blank",
                "put the column names in row 1",
                file=label,
                line=1,
            )
        )
    header = ["" if v is None else str(v) for v in header_row]
    while header and not header[-1].strip():
        header.pop()
    data, lines = [], []
    for number, row in enumerate(rows, start=2):
        if row is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        data.append(list(row))
        lines.append(number)
    frame = positional_frame(data, len(header), lines)
    return Source(extract, label, "xlsx", path, header, frame=frame)
