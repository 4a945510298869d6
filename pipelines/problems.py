"""Problems found while reading or validating extracts.

Every problem names where it is (file, line, column, value), what is wrong and how to
fix it. Errors refuse the whole load; warnings are reported and never block it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]
DOCS = "docs/extracts.md"


@dataclass
class Problem:
    """One thing wrong with an extract (or, with ``count`` > 1, many rows alike)."""

    severity: Severity
    problem: str
    fix: str
    file: str = ""
    extract: str = ""
    line: int | None = None
    column: str = ""
    value: str | None = None
    # How many rows share this problem in this column; the line is the first of them.
    count: int = 1
    lines: list[int] = field(default_factory=list)

    def where(self) -> str:
        parts = [self.file or self.extract or "load"]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def as_text(self) -> str:
        value = f" value {self.value!r}:" if self.value is not None else ""
        more = ""
        if self.count > 1:
            shown = ", ".join(str(n) for n in self.lines[:10])
            lines = f"; lines {shown}{'…' if self.count > 10 else ''}" if self.lines else ""
            more = f" ({self.count:,} rows in all{lines})"
        # Messages passed on from elsewhere may end with a full stop of their own.
        return f"{self.where()}:{value} {self.problem.rstrip('.')}{more}. Fix: {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def error(problem: str, fix: str, **where: Any) -> Problem:
    """An error: the load will be refused."""
    return Problem("error", problem, fix, **where)


def warning(problem: str, fix: str, **where: Any) -> Problem:
    """A warning: reported, never blocks a load."""
    return Problem("warning", problem, fix, **where)


class ExtractError(Exception):
    """A file cannot be read at all; carries the problems that say why."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = problems if isinstance(problems, list) else [problems]
        super().__init__("; ".join(p.as_text() for p in self.problems))
