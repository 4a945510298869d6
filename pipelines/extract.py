"""The extract step: from paths (files or folders) to :class:`Source` objects."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.mapping import Profile, extract_for_file
from pipelines.problems import ExtractError, Problem, error, warning
from pipelines.readers import Source
from pipelines.readers.ctf import is_ctf, read_ctf
from pipelines.readers.textfile import FileScan, check_size, inspect
from pipelines.readers.xlsx_reader import read_xlsx
from pipelines.specs import EXTRACTS

TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
XML_SUFFIXES = {".xml", ".ctf"}
KNOWN_SUFFIXES = TEXT_SUFFIXES | XLSX_SUFFIXES | XML_SUFFIXES


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Files named directly, plus the extract files inside named folders (sorted)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            for candidate in inside:
                if candidate.suffix.lower() in KNOWN_SUFFIXES:
                    files.append(candidate)
            if not any(p.suffix.lower() in KNOWN_SUFFIXES for p in inside):
                problems.append(
                    error(
                        "the folder holds no extract files",
                        "put .csv, .xlsx or CTF .xml files in it",
                        file=str(path),
                    )
                )
        elif path.is_file():
            files.append(path)
        else:
            problems.append(error("no such file or folder", "check the path", file=str(path)))
    return files, problems


def ctf_source(path: Path, label: str) -> list[Source]:
    """Students and contacts from a Common Transfer File, as merge (upsert) sources."""
    read = read_ctf(path, label)
    sources = []
    for name in ("students", "contacts"):
        frame = read.tables.get(name)
        if frame is None or frame.empty:
            continue
        header = list(frame.columns)
        positional = frame.copy()
        positional.columns = [f"c{i}" for i in range(len(header))]
        positional["_line"] = pd.Series([None] * len(frame), dtype="Int64")
        sources.append(
            Source(
                EXTRACTS[name],
                f"{label} ({name})",
                "ctf",
                path,
                header,
                frame=positional,
                merge=True,
            )
        )
    if sources:
        sources[0].problems.extend(read.warnings)
    return sources


def read_file(
    path: Path, profile: Profile | None, tmp_dir: Path, max_mb: int, archive_to: Path | None = None
) -> list[Source]:
    """The sources in one file; raise ExtractError if it cannot be read at all.

    With ``archive_to``, the file is copied there while it is hashed.
    """
    label = path.name
    suffix = path.suffix.lower()
    check_size(path, label, max_mb)
    if suffix in XLSX_SUFFIXES or suffix in XML_SUFFIXES or is_ctf(path):
        sources = (
            read_xlsx(path, label, profile) if suffix in XLSX_SUFFIXES else ctf_source(path, label)
        )
        scan = FileScan(path, archive_to)
        for source in sources:
            source.scan = scan
        return sources
    extract = extract_for_file(path.stem, profile)
    if extract is None:
        names = ", ".join(f"{e}.csv" for e in EXTRACTS)
        raise ExtractError(
            error(
                f"cannot tell which extract {label!r} is from its name",
                f"name the file after its extract, one of: {names} (or set mapping_profile "
                "to your MIS's profile, which knows its export names)",
                file=label,
            )
        )
    if suffix not in TEXT_SUFFIXES:
        raise ExtractError(
            error(
                f"files ending {suffix or '(nothing)'} cannot be loaded",
                "export the extract as .csv or .xlsx",
                file=label,
            )
        )
    info = inspect(path, label, tmp_dir, max_mb, archive_to)
    source = Source(extract, label, "csv", path, info.header, text=info, scan=info.scan)
    if info.encoding != "utf-8":
        source.problems.append(
            warning(
                f"read as {info.encoding} (not UTF-8)",
                "nothing to do; exporting as 'CSV UTF-8' avoids any doubt about accents",
                file=label,
            )
        )
    return [source]


def read_sources(
    paths: list[Path],
    profile: Profile | None,
    tmp_dir: Path,
    max_mb: int,
    archive_dir: Path | None = None,
) -> tuple[list[Source], list[Problem]]:
    """Read every file; a file that cannot be read becomes problems, not an exception.

    With ``archive_dir``, each file is copied there while it is hashed.
    """
    files, problems = expand_paths(paths)
    sources: list[Source] = []
    archived: set[str] = set()
    for path in files:
        archive_to = None
        if archive_dir is not None:
            # Two files may share a name (marks.csv from two folders): keep both.
            name, n = path.name, 1
            while name.lower() in archived:
                n += 1
                name = f"{path.stem} ({n}){path.suffix}"
            archived.add(name.lower())
            archive_to = archive_dir / name
        try:
            sources.extend(read_file(path, profile, tmp_dir, max_mb, archive_to))
        except ExtractError as exc:
            for problem in exc.problems:
                problem.file = problem.file or path.name
            problems.extend(exc.problems)
    return sources, problems
