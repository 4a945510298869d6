"""Mapping profiles and header matching.

A profile is a TOML file (data, not code) that turns another MIS's file and column
names into the canonical ones: ``pipelines/profiles/*.toml`` ship with the project
and a school can point the setting ``mapping_profile`` at its own file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.problems import ExtractError, Problem, error, warning
from pipelines.specs import EXTRACTS, Extract, extract_for_name, normalise_name

PROFILE_DIR = Path(__file__).parent / "profiles"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    files: dict[str, str] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)


def shipped_profiles() -> list[str]:
    """Names of the profiles that ship with schoolcomms."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str) -> Profile:
    """Load a shipped profile by name, or a school's own TOML profile by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path.lower()}.toml"
    if not path.is_file():
        raise ExtractError(
            error(
                f"there is no mapping profile {name_or_path!r}",
                f"use one of {', '.join(shipped_profiles())}, or the path of your own TOML "
                "profile (copy pipelines/profiles/sims.toml to start)",
                column="mapping_profile",
            )
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ExtractError(
            error(
                f"the profile is not valid TOML ({exc})", "correct the TOML syntax", file=str(path)
            )
        ) from exc
    columns: dict[str, dict[str, str]] = {}
    for extract_name, mapping in data.get("columns", {}).items():
        if extract_name not in EXTRACTS:
            raise ExtractError(
                error(
                    f"the profile maps columns for {extract_name!r}, which is not an extract",
                    f"use one of: {', '.join(EXTRACTS)}",
                    file=str(path),
                )
            )
        known = set(EXTRACTS[extract_name].column_names)
        for source, target in mapping.items():
            if target not in known:
                raise ExtractError(
                    error(
                        f"the profile maps {source!r} to {target!r}, which is not a column of "
                        f"{extract_name}",
                        f"use one of: {', '.join(sorted(known))}",
                        file=str(path),
                    )
                )
        columns[extract_name] = {normalise_name(k): v for k, v in mapping.items()}
    files = {normalise_name(k): v for k, v in data.get("files", {}).items()}
    return Profile(data.get("name", path.stem), data.get("description", ""), files, columns)


def extract_for_file(stem: str, profile: Profile | None) -> Extract | None:
    """The extract a file name means, canonically or through the profile's file names."""
    found = extract_for_name(stem)
    if found is None and profile is not None:
        target = profile.files.get(normalise_name(stem))
        found = EXTRACTS.get(target) if target else None
    return found


@dataclass
class HeaderMatch:
    """Which source column feeds which canonical column."""

    mapping: dict[int, str]  # source column index -> canonical column name
    unknown: list[str]
    duplicates: list[tuple[str, str]]  # (canonical, second source heading)
    profile: str | None = None

    def missing(self, extract: Extract) -> list[str]:
        have = set(self.mapping.values())
        return [c for c in extract.required if c not in have]


def _match(header: list[str], extract: Extract, profile: Profile | None) -> HeaderMatch:
    canonical = set(extract.column_names)
    extra = profile.columns.get(extract.name, {}) if profile else {}
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    duplicates: list[tuple[str, str]] = []
    for index, heading in enumerate(header):
        key = normalise_name(heading)
        target = extra.get(key) or (key if key in canonical else None)
        if target is None:
            if heading.strip():
                unknown.append(heading)
            continue
        if target in mapping.values():
            duplicates.append((target, heading))
            continue
        mapping[index] = target
    return HeaderMatch(mapping, unknown, duplicates, profile.name if profile else None)


def match_header(
    header: list[str], extract: Extract, profile: Profile | None, file: str
) -> tuple[HeaderMatch, list[Problem]]:
    """Match a header row; with no profile given, try the shipped profiles if needed.

    Returns the match and its problems (errors for missing required or duplicated
    columns, a warning listing unknown columns, which are left out of the warehouse).
    """
    match = _match(header, extract, profile)
    if profile is None and match.missing(extract):
        fits = []
        for name in shipped_profiles():
            candidate = _match(header, extract, load_profile(name))
            if not candidate.missing(extract):
                fits.append(candidate)
        if len(fits) == 1:
            match = fits[0]
    problems: list[Problem] = []
    where = {"file": file, "extract": extract.name, "line": 1}
    for column in match.missing(extract):
        problems.append(
            error(
                f"the required column {column} is missing",
                f"add a column headed '{column}' (see {extract.name} in docs/extracts.md), or "
                "set mapping_profile to the profile for your MIS export",
                column=column,
                **where,
            )
        )
    for target, heading in match.duplicates:
        problems.append(
            error(
                f"two columns both mean {target} (the second is headed {heading!r})",
                "remove one of the two columns",
                column=heading,
                **where,
            )
        )
    if match.unknown:
        problems.append(
            warning(
                f"unknown column(s) left out of the warehouse: {', '.join(match.unknown)}",
                f"nothing to do if they are not needed; the columns of {extract.name} are "
                f"{', '.join(extract.column_names)}",
                **where,
            )
        )
    if profile is None and match.profile:
        problems.append(
            warning(
                f"column names read with the {match.profile!r} mapping profile",
                "nothing to do; set mapping_profile to make this choice explicit",
                **where,
            )
        )
    return match, problems
