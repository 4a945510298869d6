"""Follow-up from the Behaviour, Detentions and Homework pages: templates and Compose prefills.

Message-bank templates are found by name, by convention: ``Behaviour: <type>``, then
``Behaviour: <outcome>``, ``Behaviour: <polarity>`` and ``Behaviour: default``;
``Detention: scheduled`` and ``Detention: missed``; ``Homework: outstanding`` (to
parents) and ``Homework: outstanding, to pupils``. A name may carry its channel, e.g.
``Behaviour: default (email)``, so each channel can have its own wording; the match
ignores case. :func:`seed_behaviour_templates` adds the starter set through the bank's
public save function (never overwriting a template a school has edited or archived).

Compose merges one context for a whole send, so the selected rows are split into
follow-ups that share one event (one incident, one detention session, one homework):
the event's details are filled into the template's text here (merge fields about the
pupil and the parent stay as merge fields for Compose) and handed over as the prefill's
``body``. A follow-up of several events hands over the template's name instead; the
templates test ``{% if detention is defined %}`` so they read well either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from schoolcomms.settings import Settings
from senders.bank import get_template, save_template
from senders.merge_fields import MERGE_FIELDS, event_fields, ukdate
from senders.templates import TemplateProblem, render, validate

PREFILL = "compose_prefill"
COMPOSE_PAGE = "pages/compose.py"
CHANNEL_LABELS = {"sms": "Text (SMS)", "email": "E-mail", "letter": "Letter"}
CHANNEL_WORDS = {"sms": ("sms", "text"), "email": ("email", "e-mail"), "letter": ("letter",)}
BEHAVIOUR_DEFAULT = "Behaviour: default"
DETENTION_TEMPLATES = {"scheduled": "Detention: scheduled", "missed": "Detention: missed"}
HOMEWORK_TEMPLATES = {
    "parents": "Homework: outstanding",
    "pupils": "Homework: outstanding, to pupils",
}

_DETENTION_DETAILS = (
    "{% if detention is defined %} on {{ detention.date|ukdate('day') }}"
    "{% if detention.start %} from {{ detention.start }}{% endif %}"
    "{% if detention.end %} to {{ detention.end }}{% endif %}"
    "{% if detention.location %} in {{ detention.location }}{% endif %}{% endif %}"
)
_DETENTION_REASON = (
    "{% if detention is defined and detention.reason %} (reason: {{ detention.reason }}){% endif %}"
)
_INCIDENT = (
    "{% if incident is defined %} on {{ incident.date|ukdate('day') }} ({{ incident.type }}"
    "{% if incident.outcome %}: {{ incident.outcome }}{% endif %}){% endif %}"
)
_HOMEWORK = (
    "{% if homework is defined %}{{ homework.subject }} homework “{{ homework.title }}”, "
    "due {{ homework.due_date|ukdate('day') }}{% else %}some homework{% endif %}"
)
# Sentences end in text, not in a block tag: the tag would eat the paragraph's newline.
_SCHEDULED = (
    "{{ student.preferred_forename }} has a detention"
    + _DETENTION_DETAILS
    + _DETENTION_REASON
    + "."
)
_MISSED = (
    "{{ student.preferred_forename }} did not attend a detention"
    + _DETENTION_DETAILS
    + _DETENTION_REASON
    + "."
)
_CONCERN = (
    "We would like to talk to you about {{ student.preferred_forename }}'s behaviour at "
    "school" + _INCIDENT + "."
)
_PRAISE = "{{ student.preferred_forename }} has been recognised at school" + _INCIDENT + "."


def _entry(name: str, channel: str, body: str, subject: str | None = None) -> dict[str, Any]:
    category = name.split(":", 1)[0].lower()
    return {
        "name": name,
        "channel": channel,
        "subject": subject,
        "body": body,
        "category": category,
    }


FOLLOW_UP_TEMPLATES: tuple[dict[str, Any], ...] = (
    _entry(BEHAVIOUR_DEFAULT, "sms", _CONCERN + " Please contact {{ school.name }}."),
    _entry(
        f"{BEHAVIOUR_DEFAULT} (email)",
        "email",
        "Dear {{ contact.name }},\n\n" + _CONCERN + "\n\n"
        "Please contact the school so that we can agree together how to support "
        "{{ student.preferred_forename }}.\n\nYours sincerely,\n{{ school.name }}",
        "About {{ student.preferred_forename }}'s behaviour",
    ),
    _entry(
        f"{BEHAVIOUR_DEFAULT} (letter)",
        "letter",
        _CONCERN + "\n\nPlease contact the school so that we can agree together how to "
        "support {{ student.preferred_forename }}.",
        "{{ student.name }} ({{ student.form }})",
    ),
    _entry("Behaviour: positive", "sms", _PRAISE + " Well done! {{ school.name }}"),
    _entry(
        "Behaviour: positive (email)",
        "email",
        "Dear {{ contact.name }},\n\n" + _PRAISE + "\n\nPlease pass on our "
        "congratulations.\n\nBest wishes,\n{{ school.name }}",
        "Good news about {{ student.preferred_forename }}",
    ),
    _entry(
        "Behaviour: positive (letter)",
        "letter",
        _PRAISE + "\n\nPlease pass on our congratulations.",
        "{{ student.name }} ({{ student.form }})",
    ),
    _entry(
        DETENTION_TEMPLATES["scheduled"],
        "sms",
        _SCHEDULED + " Please make sure {{ student.preferred_forename }} attends. "
        "{{ school.name }}",
    ),
    _entry(
        f"{DETENTION_TEMPLATES['scheduled']} (email)",
        "email",
        "Dear {{ contact.name }},\n\n" + _SCHEDULED + "\n\nPlease make sure "
        "{{ student.preferred_forename }} attends.\n\nYours sincerely,\n{{ school.name }}",
        "Detention for {{ student.preferred_forename }}",
    ),
    _entry(
        f"{DETENTION_TEMPLATES['scheduled']} (letter)",
        "letter",
        _SCHEDULED + "\n\nPlease make sure {{ student.preferred_forename }} attends.",
        "Detention: {{ student.name }} ({{ student.form }})",
    ),
    _entry(
        DETENTION_TEMPLATES["missed"],
        "sms",
        _MISSED + " Please contact {{ school.name }}.",
    ),
    _entry(
        f"{DETENTION_TEMPLATES['missed']} (email)",
        "email",
        "Dear {{ contact.name }},\n\n" + _MISSED + "\n\nPlease contact the school to talk "
        "about it.\n\nYours sincerely,\n{{ school.name }}",
        "Missed detention: {{ student.preferred_forename }}",
    ),
    _entry(
        f"{DETENTION_TEMPLATES['missed']} (letter)",
        "letter",
        _MISSED + "\n\nPlease contact the school to talk about it.",
        "Missed detention: {{ student.name }} ({{ student.form }})",
    ),
    _entry(
        HOMEWORK_TEMPLATES["parents"],
        "email",
        "Dear {{ contact.name }},\n\n{{ student.preferred_forename }} has not handed in "
        + _HOMEWORK
        + ". Please encourage {{ student.preferred_forename }} to complete it and hand it "
        "in as soon as possible.\n\nYours sincerely,\n{{ school.name }}",
        "Homework: {{ student.preferred_forename }}",
    ),
    _entry(
        HOMEWORK_TEMPLATES["pupils"],
        "email",
        "Dear {{ student.preferred_forename }},\n\nYou have not handed in "
        + _HOMEWORK
        + ". Please complete it and hand it in as soon as possible.\n\n{{ school.name }}",
        "Outstanding homework",
    ),
)
"""The starter templates :func:`seed_behaviour_templates` adds to the message bank."""


def seed_behaviour_templates(engine: Engine, actor: str = "system") -> list[str]:
    """Add each of :data:`FOLLOW_UP_TEMPLATES` the bank does not have; return the names added.

    Idempotent: a template already in the bank (edited or archived) is left alone.
    Each addition goes through :func:`senders.bank.save_template` (validated, audited).
    """
    added: list[str] = []
    for entry in FOLLOW_UP_TEMPLATES:
        if get_template(engine, entry["name"]) is None:
            save_template(engine, **entry, actor=actor)
            added.append(entry["name"])
    return added


# ---- finding a template ----------------------------------------------------------------


def _names_for(base: str, channel: str) -> list[str]:
    return [base.lower(), *(f"{base} ({word})".lower() for word in CHANNEL_WORDS[channel])]


def find_template(templates: pd.DataFrame, bases: Sequence[str], channel: str) -> str | None:
    """The first bank template (``list_templates`` rows) for ``channel`` named by ``bases``."""
    if templates.empty:
        return None
    usable = templates[(templates["channel"] == channel) & ~templates["archived"].astype(bool)]
    by_name = {str(n).strip().lower(): str(n) for n in usable["name"]}
    for base in bases:
        for name in _names_for(base, channel):
            if name in by_name:
                return by_name[name]
    return None


def starter_text(bases: Sequence[str], channel: str) -> dict[str, Any] | None:
    """The starter template (:data:`FOLLOW_UP_TEMPLATES`) for ``channel`` named by ``bases``."""
    starters = {e["name"].lower(): e for e in FOLLOW_UP_TEMPLATES if e["channel"] == channel}
    for base in bases:
        for name in _names_for(base, channel):
            if name in starters:
                return starters[name]
    return None


def behaviour_bases(incident_type: Any, outcome: Any, polarity: Any) -> list[str]:
    """Template names to try for an incident, most specific first."""
    names = [f"Behaviour: {_plain(v)}" for v in (incident_type, outcome, polarity) if _plain(v)]
    return [*dict.fromkeys(names), BEHAVIOUR_DEFAULT]


def _plain(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value).strip()


# ---- follow-ups: selected rows split by shared event -------------------------------------


@dataclass(frozen=True)
class FollowUp:
    """Pupils to message together, the templates to try and the event they share (if one)."""

    label: str
    student_ids: tuple[str, ...]
    bases: tuple[str, ...]
    group: str
    event: Mapping[str, Any] | None = None
    note: str = ""


def _ids(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values if _plain(v)))


def _pupils(n: int) -> str:
    return f"{n} pupil" + ("" if n == 1 else "s")


def behaviour_follow_ups(
    incidents: pd.DataFrame, templates: pd.DataFrame, channel: str
) -> list[FollowUp]:
    """The selected incidents, one follow-up per template they resolve to for ``channel``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in incidents.to_dict("records"):
        bases = behaviour_bases(row.get("type"), row.get("outcome"), row.get("polarity"))
        name = find_template(templates, bases, channel) or bases[-1]
        groups.setdefault(name, []).append(row | {"_bases": tuple(bases)})
    out = []
    for name, rows in groups.items():
        ids = _ids(r["student_id"] for r in rows)
        one = rows[0] if len(rows) == 1 else None
        what = f"{one['type']}, {one['name']}" if one else f"{len(rows)} incidents"
        note = f"{len(rows)} incidents"
        if one:
            note = f"{one['type']} on {ukdate(one['occurred_at'], 'day')}"
        out.append(
            FollowUp(
                f"{name} — {what} ({_pupils(len(ids))})",
                ids,
                rows[0]["_bases"] if one else (name,),
                "incident",
                one,
                note,
            )
        )
    return out


def _session_label(row: Mapping[str, Any]) -> str:
    day = ukdate(row["date"], "day") if _plain(row.get("date")) else "No date"
    times = "–".join(t for t in (_plain(row.get("start_time")), _plain(row.get("end_time"))) if t)
    place = _plain(row.get("location"))
    return ", ".join(p for p in (day, times, place) if p)


def detention_follow_ups(detentions: pd.DataFrame, kind: str) -> list[FollowUp]:
    """The selected detentions, one follow-up per session (date, times, location).

    With more than one session, a last follow-up takes every selected pupil at once,
    without the details (the template then leaves them out).
    """
    base = (DETENTION_TEMPLATES[kind],)
    keys = ["date", "start_time", "end_time", "location"]
    out = []
    for _, rows in detentions.groupby(keys, dropna=False, sort=True):
        first = rows.iloc[0].to_dict()
        reasons = {_plain(r) for r in rows["reason"]}
        event = {k: first[k] for k in keys} | {"reason": reasons.pop() if len(reasons) == 1 else ""}
        ids = _ids(rows["student_id"])
        label = f"{_session_label(first)} ({_pupils(len(ids))})"
        note = f"{kind} detention, {_session_label(first)}"
        out.append(FollowUp(label, ids, base, "detention", event, note))
    if len(out) > 1:
        ids = _ids(detentions["student_id"])
        label = f"All {_pupils(len(ids))}, without the details"
        out.append(FollowUp(label, ids, base, "detention", note=f"{kind} detentions"))
    return out


def homework_follow_ups(rows: pd.DataFrame, audience: str) -> list[FollowUp]:
    """The selected homework rows, one follow-up per assignment (then all, if several)."""
    base = (HOMEWORK_TEMPLATES[audience],)
    out = []
    for _, group in rows.groupby("assignment_id", sort=False):
        first = group.iloc[0].to_dict()
        ids = _ids(group["student_id"])
        label = f"{first['title']} ({first['class_id']}, {_pupils(len(ids))})"
        note = f"homework “{first['title']}” ({first['class_id']})"
        out.append(FollowUp(label, ids, base, "homework", first, note))
    if len(out) > 1:
        ids = _ids(rows["student_id"])
        label = f"All {_pupils(len(ids))}, without the details"
        out.append(FollowUp(label, ids, base, "homework", note="outstanding homework"))
    return out


# ---- prefills ----------------------------------------------------------------------------


def _echo(group: str) -> dict[str, str]:
    return {field: f"{{{{ {group}.{field} }}}}" for field in MERGE_FIELDS[group]}


def _safe(value: Any) -> Any:
    # Event text is filled into a template Compose renders again: no braces may survive.
    return value.replace("{", "(").replace("}", ")") if isinstance(value, str) else value


def fill_event(
    text: str | None,
    group: str,
    event: Mapping[str, Any],
    settings: Settings,
    channel: str,
    today: dt.date,
) -> str | None:
    """``text`` with the event's merge fields filled in and the others left as merge fields.

    None when that cannot be done faithfully (the text loops over ``students``, filters
    a pupil or parent field, or names another event): then hand over the template.
    """
    if not text:
        return text
    context = {
        "student": _echo("student"),
        "contact": _echo("contact"),
        "student_names": "{{ student_names }}",
        "school": {
            "name": str(settings["school_name"]),
            "address": str(settings["school_address"]),
        },
        "today": today,
        group: {k: _safe(v) for k, v in event_fields(group, dict(event)).items()},
    }
    try:
        filled = render(text, context)
    except TemplateProblem:
        return None
    return None if validate(filled, channel=channel) else filled


EVENT_KEYS: dict[str, tuple[str, ...]] = {
    "incident": ("incident_id", "occurred_at", "type", "polarity", "points")
    + ("location", "outcome", "comment"),
    "detention": ("date", "start_time", "end_time", "location", "reason"),
    "homework": ("assignment_id", "title", "subject", "class_id", "set_date", "due_date"),
}


def _jsonable(group: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's own fields as plain JSON values (dates as ISO text)."""
    out: dict[str, Any] = {}
    for key in EVENT_KEYS[group]:
        value = event.get(key)
        if isinstance(value, pd.Timestamp | dt.datetime):
            value = value.isoformat(sep=" ") if group == "incident" else value.date().isoformat()
        elif isinstance(value, dt.date):
            value = value.isoformat()
        elif hasattr(value, "item"):  # numpy numbers
            value = value.item()
        out[key] = None if _plain(value) == "" else value
    return out


def prefill(
    follow_up: FollowUp,
    channel: str,
    templates: pd.DataFrame,
    settings: Settings,
    *,
    source: str,
    today: dt.date,
    recipients: str = "parents",
) -> dict[str, Any]:
    """The ``compose_prefill`` for a follow-up on ``channel`` (see the module docstring).

    Keys: ``student_ids``, ``channel``, ``source``, ``recipients`` (``parents`` or
    ``pupils``), ``note`` (what it is about), and either ``template`` (a bank name) or
    ``body`` (+ ``subject``) with the shared event's details filled in; ``context``
    holds the shared event (``{"detention": {…}}``) for a Compose that merges it.
    """
    out: dict[str, Any] = {
        "student_ids": list(follow_up.student_ids),
        "channel": channel,
        "source": source,
        "recipients": recipients,
        "note": follow_up.note or follow_up.label,
    }
    name = find_template(templates, follow_up.bases, channel)
    row = None
    if name is not None:
        stored = templates[templates["name"] == name].iloc[0]
        row = {"name": name, "subject": stored["subject"], "body": stored["body"]}
    else:
        row = starter_text(follow_up.bases, channel)
    if follow_up.event is not None:
        out["context"] = {follow_up.group: _jsonable(follow_up.group, follow_up.event)}
    if row is not None and follow_up.event is not None:
        args = (follow_up.group, follow_up.event, settings, channel, today)
        body = fill_event(row["body"], *args)
        subject = fill_event(_plain(row.get("subject")) or None, *args)
        if body is not None and (subject is not None or not _plain(row.get("subject"))):
            out |= {"body": body, "subject": subject, "from_template": row["name"]}
            return out
    if name is not None:
        out["template"] = name
    elif row is not None:
        out |= {"body": row["body"], "subject": row["subject"], "from_template": row["name"]}
    return out


# ---- small Streamlit helpers ---------------------------------------------------------------


def hand_to_compose(prefill_: dict[str, Any]) -> None:
    """Put the prefill where Compose reads it and open Compose (or say how to)."""
    from streamlit.errors import StreamlitAPIException

    st.session_state[PREFILL] = prefill_
    try:
        st.switch_page(COMPOSE_PAGE)
    except StreamlitAPIException:
        st.info(
            f"{_pupils(len(prefill_['student_ids']))} are ready in Compose: open **Compose** "
            "from the menu to check the message and send it."
        )


def selected_positions(selection: Any, size: int) -> list[int]:
    """The row positions selected in a ``st.dataframe`` with ``on_select``."""
    rows: list[Any] = []
    if selection:
        try:
            rows = list(selection["selection"]["rows"])
        except (KeyError, TypeError):
            rows = list(getattr(getattr(selection, "selection", None), "rows", []) or [])
    return [r for r in rows if isinstance(r, int) and 0 <= r < size]


def uk_today() -> dt.date:
    """Today's date in the UK (the warehouse keeps UK local dates)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Europe/London")).date()


def date_range(value: Any, default: dt.date) -> tuple[dt.date, dt.date]:
    """The (start, end) of a ``st.date_input`` range, whatever was picked so far."""
    if isinstance(value, tuple | list):
        start = value[0] if value else default
        return start, value[1] if len(value) > 1 else start
    return (value, value) if value else (default, default)


@st.cache_resource(show_spinner=False)
def _seeded(url: str, _engine: Engine) -> list[str]:
    return seed_behaviour_templates(_engine)


def ensure_templates(engine: Engine) -> None:
    """Seed the starter templates once per process and ops store (never stops the page)."""
    import logging

    try:
        _seeded(str(engine.url), engine)
    except Exception:  # the pages work without them: they fall back to the starter text
        logging.getLogger(__name__).exception("Could not add the behaviour templates")


def handoff(
    follow_ups: Sequence[FollowUp],
    channel: str,
    templates: pd.DataFrame,
    *,
    source: str,
    key: str,
    action: str,
    recipients: str = "parents",
) -> None:
    """Choose one of ``follow_ups`` and hand its pupils to Compose, prefilled.

    ``action`` is re-checked when the button is pressed: ``send`` means ``send.single``
    for one pupil and ``send.bulk`` for more (teachers may message one pupil's parents
    at a time); any other value is an action key (``letters.print``).
    """
    from dashboard.common import get_settings, require_action, user_can
    from schoolcomms.roles import PermissionDenied

    if not follow_ups:
        return
    index = 0
    if len(follow_ups) > 1:
        st.caption("The selection is about different things: message each group in turn.")
        index = st.selectbox(
            "Message about",
            range(len(follow_ups)),
            format_func=lambda i: follow_ups[i].label,
            key=f"{key}_group",
        )
    chosen = follow_ups[index]
    filled = prefill(
        chosen,
        channel,
        templates,
        get_settings(),
        source=source,
        today=uk_today(),
        recipients=recipients,
    )
    name = filled.get("template") or filled.get("from_template")
    details = " with the details filled in" if "body" in filled and chosen.event else ""
    st.caption(f"Template: **{name}**{details}. You can change the message in Compose.")
    many = len(chosen.student_ids) > 1
    needed = ("send.bulk" if many else "send.single") if action == "send" else action
    blocked = many and action == "send" and not user_can("send.bulk")
    if blocked:
        st.caption("Your account may message one pupil's parents at a time: select one pupil.")
    who = "pupils" if recipients == "pupils" else "parents"
    label = "Write letters in Compose" if channel == "letter" else f"Message {who} in Compose"
    if st.button(label, key=f"{key}_go", disabled=blocked, icon=":material/edit_square:"):
        try:
            require_action(needed)
        except PermissionDenied as exc:
            st.error(str(exc))
            return
        hand_to_compose(filled)
