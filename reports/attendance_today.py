"""A day's absences for the Attendance page: who is absent, first days, N codes, contact.

Marks are put in categories exactly as :mod:`reports.attendance` does (the same code
lists, including the school's own codes from ``extra_attendance_codes``); an absence is
a mark in the ``authorised`` or ``unauthorised`` category. A day's absences count every
register of the day (AM/PM sessions and lessons): a pupil missing one lesson is absent
from it, which is what the people chasing absence need to see. Trends, like the DfE
percentages, count sessions when the data has any and lessons otherwise.

- :func:`absence_marks` / :func:`absences_on`: the day's absent marks, and per pupil.
- :func:`first_day_absences`: pupils absent on the day who attended a register on their
  previous day with registers (or have no earlier register): the first day of a spell.
- :func:`unexplained_marks`: ``N`` (reason not yet established) marks to chase, oldest
  first, with the teacher who took the register (``lessons.staff_id``, else
  ``marks.recorded_by``).
- :func:`contacted_on`: who was contacted on the day and how, from the message log and
  the contact log of the ops store.
- :func:`daily_attendance`: attendance per day (optionally per year group) for charts.

Dates and times are naive UK local, as everywhere in the warehouse. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine, select

from reports import attendance
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import Batch, ContactEntry, Message
from schoolcomms.warehouse import Warehouse

UK = ZoneInfo("Europe/London")
CHANNEL_WORDS = {"sms": "SMS", "email": "E-mail", "letter": "Letter"}
METHOD_WORDS = {
    "phone": "Phone call",
    "meeting": "Meeting",
    "email": "E-mail",
    "letter": "Letter",
    "other": "Contact",
}
# Spring term starts in the first week of January, summer after Easter (mid April).
TERM_STARTS = ((9, 1), (4, 14), (1, 1))

_CATEGORY = """
CASE
    WHEN list_contains($attending, upper(m.mark)) THEN 'attended'
    WHEN list_contains($authorised, upper(m.mark)) THEN 'authorised'
    WHEN list_contains($unauthorised, upper(m.mark)) THEN 'unauthorised'
    WHEN list_contains($not_possible, upper(m.mark)) THEN 'not_possible'
END
"""
_REGISTER = """
CASE WHEN l.kind = 'session' THEN coalesce(nullif(l.period, ''), 'Registration') || ' session'
     ELSE trim(concat_ws(' ', CASE WHEN coalesce(l.period, '') <> '' THEN 'P' || l.period END,
                         coalesce(nullif(l.subject, ''), nullif(l.class_id, ''), 'Lesson')))
END
"""
# One row per mark with the pupil, the register and who took it; {where} filters.
MARKS_SQL = f"""
SELECT l.date, left(CAST(l.start_time AS VARCHAR), 5) AS start, m.student_id,
       trim(concat_ws(' ', coalesce(nullif(s.preferred_forename, ''), s.forename), s.surname))
           AS name,
       s.year_group, s.form, {_REGISTER} AS register, l.subject, l.class_id, l.lesson_id,
       coalesce(nullif(l.kind, ''), 'lesson') AS kind, m.mark, {_CATEGORY} AS category,
       m.comment, m.recorded_at,
       coalesce(nullif(l.staff_id, ''), nullif(m.recorded_by, '')) AS teacher_id,
       trim(concat_ws(' ', nullif(t.title, ''), nullif(t.forename, ''), t.surname)) AS teacher
FROM marks m
JOIN lessons l ON l.lesson_id = m.lesson_id
LEFT JOIN students s ON s.student_id = m.student_id
LEFT JOIN staff t ON t.staff_id = coalesce(nullif(l.staff_id, ''), nullif(m.recorded_by, ''))
WHERE {{where}}
"""
_PUPIL_ORDER = """
try_cast(regexp_extract(year_group, '^ *([0-9]+)', 1) AS INTEGER) NULLS LAST, year_group,
form, name, student_id
"""
# The day's registers per pupil, then one row per pupil absent from at least one.
PUPILS_SQL = f"""
WITH day_marks AS ({MARKS_SQL.format(where="l.date = $day")}),
per_pupil AS (
    SELECT student_id, any_value(name) AS name, any_value(year_group) AS year_group,
           any_value(form) AS form,
           string_agg(DISTINCT mark, ', ' ORDER BY mark) FILTER (WHERE category IN ('authorised',
               'unauthorised')) AS codes,
           count(*) FILTER (WHERE category IN ('authorised', 'unauthorised')) AS absent,
           count(*) FILTER (WHERE category = 'unauthorised') AS unauthorised,
           count(*) FILTER (WHERE category = 'authorised') AS authorised,
           count(*) FILTER (WHERE category IS DISTINCT FROM 'not_possible') AS registers,
           min(start) FILTER (WHERE category IN ('authorised', 'unauthorised'))
               AS first_absent,
           string_agg(register || ': ' || mark, '; ' ORDER BY start, register)
               FILTER (WHERE category IN ('authorised', 'unauthorised')) AS marks
    FROM day_marks GROUP BY student_id
)
SELECT student_id, name, year_group, form, codes, absent, registers,
       absent = registers AS whole_day, unauthorised, authorised, first_absent, marks
FROM per_pupil WHERE absent > 0
"""
# Each pupil's last day with a possible mark before $day, and whether they attended then.
PREVIOUS_SQL = f"""
WITH earlier AS (
    SELECT m.student_id, l.date, {_CATEGORY} AS category
    FROM marks m JOIN lessons l ON l.lesson_id = m.lesson_id
    WHERE l.date < $day AND l.date >= $since AND m.student_id IN (SELECT unnest($ids))
)
SELECT student_id, max(date) AS previous_day,
       coalesce(max(date) FILTER (WHERE category = 'attended') = max(date), false)
           AS attended_previous
FROM earlier WHERE category IN ('attended', 'authorised', 'unauthorised')
GROUP BY student_id
"""
DAILY_SQL = """
WITH basis AS ({basis}),
categorised AS (
    SELECT l.date, {inner} {category} AS category
    FROM marks m
    JOIN lessons l ON l.lesson_id = m.lesson_id
    {join}
    WHERE l.date BETWEEN $start AND $end
      AND coalesce(nullif(l.kind, ''), 'lesson') = (SELECT basis FROM basis)
)
SELECT date, {outer}
       count(*) FILTER (WHERE category IN ('attended', 'authorised', 'unauthorised'))
           AS possible,
       count(*) FILTER (WHERE category = 'attended') AS attended,
       round(100.0 * count(*) FILTER (WHERE category = 'attended')
             / nullif(count(*) FILTER (WHERE category IN ('attended', 'authorised',
                                                           'unauthorised')), 0), 1) AS percent
FROM categorised GROUP BY ALL ORDER BY ALL
"""
CONTACT_COLUMNS = ("student_id", "contacts", "contacted")


def _codes(day: dt.date, extra_codes: str) -> dict[str, object]:
    # attendance._params builds the same code lists the percentages use.
    params = attendance._params(day, day, extra_codes)
    del params["start"], params["end"]
    return params


def uk_today() -> dt.date:
    """Today's date in the UK (the warehouse's dates are UK dates)."""
    return dt.datetime.now(UK).date()


def term_start(day: dt.date) -> dt.date:
    """The first day of the (English) term holding ``day``: 1 Sep, 1 Jan or 14 Apr."""
    for month, first in TERM_STARTS:
        start = dt.date(day.year, month, first)
        if start <= day:
            return start
    return dt.date(day.year - 1, 9, 1)


def latest_register_day(
    warehouse: Warehouse, on_or_before: dt.date | None = None
) -> dt.date | None:
    """The last date with any mark (on or before ``on_or_before`` if given), or None."""
    where = "" if on_or_before is None else "WHERE l.date <= $day"
    params = {} if on_or_before is None else {"day": on_or_before}
    frame = warehouse.query(
        f"SELECT max(l.date) AS day FROM marks m JOIN lessons l USING (lesson_id) {where}", params
    )
    value = frame.iloc[0]["day"]
    return None if pd.isna(value) else pd.Timestamp(value).date()


def absence_marks(warehouse: Warehouse, day: dt.date, *, extra_codes: str = "") -> pd.DataFrame:
    """Every absent mark (authorised or unauthorised) of ``day``, one row per mark.

    Columns: date, start (HH:MM), student_id, name, year_group, form, register (e.g.
    ``AM session``, ``P2 Maths``), subject, class_id, lesson_id, kind, mark, category,
    comment, recorded_at, teacher_id (the lesson's teacher, else who recorded the mark),
    teacher (their name, NULL when not in the staff extract). In school order, then by time.
    """
    sql = MARKS_SQL.format(where="l.date = $day") + (
        f" AND {_CATEGORY} IN ('authorised', 'unauthorised')"
        " ORDER BY try_cast(regexp_extract(s.year_group, '^ *([0-9]+)', 1) AS INTEGER)"
        " NULLS LAST, s.year_group, s.form, name, m.student_id, l.start_time, l.lesson_id"
    )
    return warehouse.query(sql, {"day": day, **_codes(day, extra_codes)})


def absences_on(warehouse: Warehouse, day: dt.date, *, extra_codes: str = "") -> pd.DataFrame:
    """The pupils absent from at least one register on ``day``, one row each.

    Columns: student_id, name, year_group, form, codes (the absence codes given),
    absent (absent registers), registers (registers marked, not counting
    ``not_possible``), whole_day (absent from every one), unauthorised, authorised,
    first_absent (HH:MM), marks (``P1 Maths: O; P2 English: O``). In school order.
    """
    sql = PUPILS_SQL + f" ORDER BY {_PUPIL_ORDER}"
    return warehouse.query(sql, {"day": day, **_codes(day, extra_codes)})


def previous_registers(
    warehouse: Warehouse, student_ids: Iterable[str], day: dt.date, *, lookback_days: int = 60
) -> pd.DataFrame:
    """Each pupil's last day with a register before ``day`` (within ``lookback_days``).

    Columns: student_id, previous_day (date), attended_previous (attended at least one
    register that day). Pupils with no such day are absent from the frame.
    """
    ids = sorted({str(i) for i in student_ids if i})
    if not ids:
        return pd.DataFrame(columns=["student_id", "previous_day", "attended_previous"])
    params = {
        "day": day,
        "since": day - dt.timedelta(days=lookback_days),
        "ids": ids,
        **_codes(day, ""),
    }
    return warehouse.query(PREVIOUS_SQL + " ORDER BY student_id", params)


def first_day_absences(
    warehouse: Warehouse,
    day: dt.date,
    *,
    extra_codes: str = "",
    absences: pd.DataFrame | None = None,
    lookback_days: int = 60,
) -> pd.DataFrame:
    """Pupils absent on ``day`` who were present on their previous day with registers.

    "Present" means attending at least one register that day; a pupil with no register
    in the ``lookback_days`` before ``day`` is on the first day of a spell too.
    ``absences`` is :func:`absences_on` for ``day`` when the caller has it already.
    Columns as :func:`absences_on`, plus previous_day (date or NULL) and previous
    (``present`` or ``no earlier register``), in the same order.
    """
    if absences is None:
        absences = absences_on(warehouse, day, extra_codes=extra_codes)
    before = previous_registers(warehouse, absences["student_id"], day, lookback_days=lookback_days)
    merged = absences.merge(before, on="student_id", how="left")
    first = merged["previous_day"].isna() | merged["attended_previous"].eq(True)
    out = merged[first].drop(columns=["attended_previous"]).reset_index(drop=True)
    out["previous"] = [
        "no earlier register" if pd.isna(d) else "present" for d in out["previous_day"]
    ]
    return out


def unexplained_marks(
    warehouse: Warehouse, end: dt.date, days: int, *, code: str = "N"
) -> pd.DataFrame:
    """Marks with ``code`` (``N``: no reason yet) in the ``days`` days ending ``end``.

    Oldest first. Columns as :func:`absence_marks` plus days_old (days before ``end``).
    """
    if days < 1:
        raise ValueError("Look back at least one day for N codes to chase.")
    sql = MARKS_SQL.format(where="l.date BETWEEN $start AND $end AND upper(m.mark) = $code")
    params = {
        "start": end - dt.timedelta(days=days - 1),
        "end": end,
        "code": code.upper(),
        **_codes(end, ""),
    }
    frame = warehouse.query(sql + " ORDER BY l.date, l.start_time, name, m.student_id", params)
    frame["days_old"] = [(end - pd.Timestamp(d).date()).days for d in frame["date"]]
    return frame


def daily_attendance(
    warehouse: Warehouse,
    start: dt.date,
    end: dt.date,
    *,
    by_year_group: bool = False,
    extra_codes: str = "",
) -> pd.DataFrame:
    """Attendance per day from ``start`` to ``end``: date, [year_group,] possible,
    attended, percent (as :mod:`reports.attendance` counts: sessions when there are any)."""
    sql = DAILY_SQL.format(
        basis=attendance.BASIS_SQL,
        category=_CATEGORY,
        inner="coalesce(nullif(s.year_group, ''), '(none)') AS year_group,"
        if by_year_group
        else "",
        outer="year_group," if by_year_group else "",
        join="LEFT JOIN students s ON s.student_id = m.student_id" if by_year_group else "",
    )
    frame = warehouse.query(sql, attendance._params(start, end, extra_codes))
    return frame[frame["possible"] > 0].reset_index(drop=True)


def _uk_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=UK)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def _uk_time(value: dt.datetime) -> str:
    return value.astimezone(UK).strftime("%H:%M")


def contacted_on(
    engine: Engine, warehouse: Warehouse, student_ids: Iterable[str], day: dt.date
) -> pd.DataFrame:
    """Who was contacted on ``day`` (UK) about these pupils, and how.

    From the message log (absence texts, Compose sends, alerts to parents: channel,
    time, template, status; a family message about siblings counts for each pupil of
    its batch the contact is linked to) and the contact log (calls, meetings: method,
    time, who, outcome). Columns: student_id, contacts (how many), contacted (in words,
    ``SMS 09:45 absence text (sent); Phone call 10:10 by …``). Pupils with no contact
    are absent from the frame.
    """
    ids = sorted({str(i) for i in student_ids if i})
    if not ids:
        return pd.DataFrame(columns=list(CONTACT_COLUMNS))
    since, until = _uk_bounds(day)
    found: list[tuple[str, dt.datetime, str]] = []
    with session_scope(engine, immediate=False) as session:
        messages = session.execute(
            select(
                Message.student_id,
                Message.contact_id,
                Message.batch_id,
                Message.channel,
                Message.created_at,
                Message.template_name,
                Message.status,
            ).where(
                Message.created_at >= since,
                Message.created_at < until,
                # Staff notices' e-mails name a pupil but are not contact with parents.
                Message.template_name.is_(None) | ~Message.template_name.startswith("notice:"),
            )
        ).all()
        batch_ids = {m.batch_id for m in messages if m.batch_id is not None}
        batches = {
            b.id: [str(s) for s in (b.filter or {}).get("student_ids", [])]
            for b in session.scalars(select(Batch).where(Batch.id.in_(batch_ids)))
        }
        entries = session.scalars(
            select(ContactEntry).where(
                ContactEntry.student_id.in_(ids),
                ContactEntry.happened_at >= since,
                ContactEntry.happened_at < until,
            )
        ).all()
        for e in entries:
            who = f" with {e.contact_name}" if e.contact_name else ""
            outcome = f": {e.outcome}" if e.outcome else ""
            incoming = " (they called us)" if e.direction == "in" else ""
            text = (
                f"{METHOD_WORDS.get(e.method, e.method)} {_uk_time(e.happened_at)}{who}"
                f"{incoming} by {e.created_by}{outcome}"
            )
            found.append((e.student_id, e.happened_at, text))
    wanted = set(ids)
    linked = _linked_contacts(warehouse, messages, batches, wanted)
    for m in messages:
        about = {m.student_id} if m.student_id in wanted else set()
        about |= linked.get((m.batch_id, m.contact_id), set())
        what = m.template_name or "message"
        text = f"{CHANNEL_WORDS.get(m.channel, m.channel)} {_uk_time(m.created_at)} {what} ({m.status})"
        found.extend((student, m.created_at, text) for student in sorted(about))
    if not found:
        return pd.DataFrame(columns=list(CONTACT_COLUMNS))
    frame = pd.DataFrame(found, columns=["student_id", "at", "text"]).sort_values(
        ["student_id", "at"]
    )
    grouped = frame.groupby("student_id", sort=True)["text"]
    return pd.DataFrame(
        {"contacts": grouped.size(), "contacted": grouped.agg("; ".join)}
    ).reset_index()[list(CONTACT_COLUMNS)]


def _linked_contacts(
    warehouse: Warehouse,
    messages: list,  # rows of (student_id, contact_id, batch_id, …)
    batches: dict[int, list[str]],
    wanted: set[str],
) -> dict[tuple[int, str], set[str]]:
    """(batch, contact) → the wanted pupils of that batch the contact is linked to."""
    pairs = {
        (m.batch_id, m.contact_id)
        for m in messages
        if m.batch_id in batches and m.contact_id and wanted & set(batches[m.batch_id])
    }
    if not pairs:
        return {}
    contacts = sorted({c for _, c in pairs})
    links = warehouse.query(
        "SELECT student_id, contact_id FROM contacts "
        "WHERE contact_id IN (SELECT unnest($contacts)) AND student_id IN (SELECT unnest($ids))",
        {"contacts": contacts, "ids": sorted(wanted)},
    )
    by_contact: dict[str, set[str]] = {}
    for row in links.itertuples(index=False):
        by_contact.setdefault(str(row.contact_id), set()).add(str(row.student_id))
    return {
        (batch, contact): by_contact.get(contact, set()) & set(batches[batch])
        for batch, contact in pairs
    }


__all__ = [
    "CONTACT_COLUMNS",
    "absence_marks",
    "absences_on",
    "contacted_on",
    "daily_attendance",
    "first_day_absences",
    "latest_register_day",
    "previous_registers",
    "term_start",
    "uk_today",
    "unexplained_marks",
]
