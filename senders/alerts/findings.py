"""What each kind of alert rule finds at a time: one warehouse query per rule, then words.

A :class:`Finding` is one firing-to-be of one rule (a pupil crossing a threshold, an
incident, a pupil's codes of the day, a truant), with its key, title and body, before
anyone is chosen to hear of it. Keys (unique per rule in ``alert_firings``):

- behaviour threshold, calendar week: ``{student}:{ISO year}-W{week}``; the count is of
  the week so far (Monday 00:00 to the evaluation time).
- behaviour threshold, rolling ``days``: ``{student}:{crossing incident_id}``. Walking a
  pupil's matching incidents in time order, the count is of the incidents on the
  crossing's day and the ``days - 1`` days before it that came *after* the incident
  that made the previous crossing, so the count restarts after each crossing. Only a
  crossing in the rolling window that ends at the evaluation time (its day or the
  ``days - 1`` days before) fires: loading a term of history raises no old alerts.
- behaviour incident: ``{incident_id}``; attendance code and truancy:
  ``{student}:{date}`` (once a pupil a day a rule).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reports import alerts as reads
from schoolcomms.codes import code_table
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders.alerts.validation import Rule

MAX_LINES = 20
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class Finding:
    """What one rule found about one pupil (or incident), before recipients."""

    key: str
    student_id: str | None
    pupil: dict[str, Any]
    title: str
    body: str
    lessons: list[dict[str, Any]] = field(default_factory=list)
    incident: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


# ---- words ------------------------------------------------------------------------------


def text(value: Any) -> str:
    """``value`` as stripped text; None, NaN and NA are blank."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def hhmm(value: Any) -> str:
    """A time (or time-like text) as ``HH:MM``."""
    return value.strftime("%H:%M") if hasattr(value, "strftime") else text(value)[:5]


def _when(value: Any) -> str:
    stamp = pd.Timestamp(value).to_pydatetime()
    return f"{_WEEKDAYS[stamp.weekday()]} {stamp:%d/%m %H:%M}"


def _pupil(row: Mapping[str, Any]) -> dict[str, Any]:
    sid = text(row.get("student_id"))
    name = text(row.get("name")) or sid
    form = text(row.get("form"))
    return {
        "student_id": sid,
        "name": name,
        "form": form,
        "year_group": text(row.get("year_group")),
        "label": f"{name} ({form})" if form else name,
    }


def lesson_words(lesson: Mapping[str, Any]) -> str:
    """``P2 Maths at 10:00`` or ``the AM session at 08:45``."""
    period = text(lesson.get("period"))
    if text(lesson.get("kind")) == "session":
        what = f"the {period} session" if period else "the registration session"
    else:
        parts = [f"P{period}" if period else "", text(lesson.get("subject"))]
        what = " ".join(p for p in parts if p) or f"lesson {text(lesson.get('lesson_id'))}"
    return f"{what} at {hhmm(lesson.get('start_time'))}"


def _adjective(params: Mapping[str, Any]) -> str:
    polarity = params.get("polarity", "any")
    return "" if polarity == "any" else f"{polarity} "


def _incident_words(params: Mapping[str, Any]) -> str:
    types = params.get("types") or []
    return f"{_adjective(params)}incident(s)" + (f" ({', '.join(types)})" if types else "")


# ---- behaviour --------------------------------------------------------------------------


def _threshold(warehouse: Warehouse, rule: Rule, at: dt.datetime, _: Settings) -> list[Finding]:
    p = rule.params
    if p.get("window", "week") == "rolling":
        return _rolling(warehouse, rule, at)
    threshold, words = int(p["threshold"]), _incident_words(p)
    monday = at.date() - dt.timedelta(days=at.weekday())
    year, week, _ = at.isocalendar()
    frame = reads.incidents_in_window(
        warehouse,
        start=dt.datetime.combine(monday, dt.time.min),
        at=at,
        threshold=threshold,
        types=p.get("types", []),
        polarity=p.get("polarity", "any"),
    )
    found = []
    for row in frame.to_dict("records"):
        pupil = _pupil(row)
        ids, kinds, times = list(row["incident_ids"]), list(row["types"]), list(row["times"])
        lines = [f"- {_when(t)} {k}" for t, k in zip(times, kinds, strict=True)]
        n = int(row["incidents"])
        crossing = threshold - 1
        found.append(
            Finding(
                key=f"{pupil['student_id']}:{year}-W{week:02d}",
                student_id=pupil["student_id"],
                pupil=pupil,
                title=f"{pupil['label']}: {n} {words} this week",
                body=f"{pupil['label']} has had {n} {words} this week (since Monday "
                f"{monday:%d/%m/%Y}), reaching the threshold of {threshold}:\n"
                + "\n".join(lines[:MAX_LINES]),
                incident={"incident_id": ids[crossing], "type": kinds[crossing]}
                | {"occurred_at": times[crossing]},
                details={
                    "window": f"{year}-W{week:02d}",
                    "incidents": n,
                    "incident_ids": ids,
                    "crossing_incident_id": ids[crossing],
                },
            )
        )
    return found


def _rolling(warehouse: Warehouse, rule: Rule, at: dt.datetime) -> list[Finding]:
    p = rule.params
    threshold, days, words = int(p["threshold"]), int(p["days"]), _incident_words(p)
    span = dt.timedelta(days=days - 1)
    # A crossing still in its window is on or after `first`; its window reaches back
    # `span` further, so only pupils with enough incidents since then can have one.
    first = at.date() - span
    frame = reads.rolling_histories(
        warehouse,
        since=dt.datetime.combine(first - span, dt.time.min),
        at=at,
        threshold=threshold,
        types=p.get("types", []),
        polarity=p.get("polarity", "any"),
    )
    found: list[Finding] = []
    # Rows come ordered by pupil, then time.
    for _, group in itertools.groupby(frame.to_dict("records"), key=lambda r: r["student_id"]):
        rows = list(group)
        pupil = _pupil(rows[0])
        window: deque[dict[str, Any]] = deque()
        for row in rows:
            moment = pd.Timestamp(row["occurred_at"]).to_pydatetime()
            window.append(row | {"moment": moment})
            while window[0]["moment"].date() < moment.date() - span:
                window.popleft()
            if len(window) < threshold:
                continue
            counted = list(window)
            window.clear()  # the count restarts after each crossing
            if moment.date() < first:
                continue  # an old crossing, outside the window that ends now
            lines = [f"- {_when(r['moment'])} {r['type']}" for r in counted]
            found.append(
                Finding(
                    key=f"{pupil['student_id']}:{row['incident_id']}",
                    student_id=pupil["student_id"],
                    pupil=pupil,
                    title=f"{pupil['label']}: {len(counted)} {words} in {days} day(s)",
                    body=f"{pupil['label']} has had {len(counted)} {words} within {days} "
                    f"day(s), reaching the threshold of {threshold}:\n"
                    + "\n".join(lines[:MAX_LINES]),
                    incident={"incident_id": row["incident_id"], "type": row["type"]}
                    | {"occurred_at": moment},
                    details={
                        "window": f"{days} days",
                        "incidents": len(counted),
                        "incident_ids": [r["incident_id"] for r in counted],
                        "crossing_incident_id": row["incident_id"],
                    },
                )
            )
    return found


def _incidents(warehouse: Warehouse, rule: Rule, at: dt.datetime, _: Settings) -> list[Finding]:
    p = rule.params
    first = at.date() - dt.timedelta(days=int(p.get("lookback_days", 1)) - 1)
    frame = reads.incidents_between(
        warehouse,
        start=dt.datetime.combine(first, dt.time.min),
        at=at,
        types=p.get("types", []),
        polarity=p.get("polarity", "any"),
    )
    found = []
    for row in frame.to_dict("records"):
        pupil = _pupil(row)
        points = f", {int(row['points'])} points" if text(row["points"]) else ""
        where = f" in {text(row['location'])}" if text(row["location"]) else ""
        facts = [f"{row['type']} ({row['polarity']}{points}) on {_when(row['occurred_at'])}"]
        facts[0] += f"{where}."
        for column, label in (
            ("outcome", "Outcome"),
            ("comment", "Comment"),
            ("recorded_by", "Recorded by"),
        ):
            if text(row[column]):
                facts.append(f"{label}: {text(row[column]).rstrip('.')}.")
        found.append(
            Finding(
                key=str(row["incident_id"]),
                student_id=pupil["student_id"],
                pupil=pupil,
                title=f"{pupil['label']}: {row['type']}",
                body=f"{pupil['label']}: " + " ".join(facts),
                incident=row,
                details={"incident_id": row["incident_id"], "type": row["type"]},
            )
        )
    return found


# ---- attendance -------------------------------------------------------------------------


def _codes(warehouse: Warehouse, rule: Rule, at: dt.datetime, _: Settings) -> list[Finding]:
    p = rule.params
    frame = reads.marks_with_codes(
        warehouse,
        at=at,
        codes=p["codes"],
        year_groups=p.get("year_groups", []),
        forms=p.get("forms", []),
        include_sessions=p.get("include_sessions", True),
    )
    found = []
    for row in frame.to_dict("records"):
        pupil = _pupil(row)
        lessons = [dict(lesson) | {"date": at.date()} for lesson in row["lessons"]]
        marks = sorted({lesson["mark"] for lesson in lessons})
        first = lessons[0]
        what = (
            f"{first['mark']} in {lesson_words(first)}"
            if len(lessons) == 1
            else f"{', '.join(marks)} in {len(lessons)} registers today"
        )
        lines = [f"- {lesson_words(x)} ({x['lesson_id']}): {x['mark']}" for x in lessons]
        found.append(
            Finding(
                key=f"{pupil['student_id']}:{at.date().isoformat()}",
                student_id=pupil["student_id"],
                pupil=pupil,
                title=f"{pupil['label']}: {what}",
                body=f"{pupil['label']} was given {', '.join(marks)} today "
                f"({at.date():%d/%m/%Y}):\n" + "\n".join(lines[:MAX_LINES]),
                lessons=lessons,
                details={"lessons": [x["lesson_id"] for x in lessons], "marks": marks},
            )
        )
    return found


def present_codes(settings: Settings) -> list[str]:
    """Marks that show a pupil was in: the present category (``/ \\ L`` and the school's
    own) and ``U`` (late after registers closed: absent on paper, but in school)."""
    table = code_table(str(settings["extra_attendance_codes"]))
    return sorted({c for c, category, _, _ in table if category == "present"} | {"U"})


def _truancy(
    warehouse: Warehouse, rule: Rule, at: dt.datetime, settings: Settings
) -> list[Finding]:
    frame = reads.truancy_candidates(warehouse, at=at, present_codes=present_codes(settings))
    found = []
    for row in frame.to_dict("records"):
        pupil = _pupil(row)
        columns = ("lesson_id", "start_time", "end_time", "period", "subject", "staff_id")
        lesson = {k: row[k] for k in (*columns, "class_id")}
        lesson |= {"kind": "lesson", "mark": "O", "date": at.date()}
        present = {
            "kind": row["present_kind"],
            "period": row["present_period"],
            "start_time": row["present_start"],
            "lesson_id": row["present_lesson_id"],
            "subject": row["present_subject"],
        }
        found.append(
            Finding(
                key=f"{pupil['student_id']}:{at.date().isoformat()}",
                student_id=pupil["student_id"],
                pupil=pupil,
                title=f"Possible truancy: {pupil['label']}, O in {lesson_words(lesson)}",
                body=f"{pupil['label']} was present at {lesson_words(present)} "
                f"({row['present_mark']}, {row['present_lesson_id']}) and then marked O in "
                f"{lesson_words(lesson)} ({row['lesson_id']}) today ({at.date():%d/%m/%Y}).",
                lessons=[lesson],
                details={
                    "lesson_id": row["lesson_id"],
                    "present_lesson_id": row["present_lesson_id"],
                    "present_mark": row["present_mark"],
                },
            )
        )
    return found


FINDERS: dict[str, Callable[[Warehouse, Rule, dt.datetime, Settings], list[Finding]]] = {
    "behaviour_threshold": _threshold,
    "behaviour_incident": _incidents,
    "attendance_code": _codes,
    "truancy": _truancy,
}
"""Each kind → the function that finds its firings at a time (naive UK local)."""


def find(warehouse: Warehouse, rule: Rule, at: dt.datetime, settings: Settings) -> list[Finding]:
    """What ``rule`` finds at ``at`` (naive UK local time), already fired or not."""
    return FINDERS[rule.kind](warehouse, rule, at, settings)
