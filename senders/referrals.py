"""Behaviour referrals: the configured referral list, referring a pupil, actioning referrals.

The referral list (:class:`~schoolcomms.ops.models.ReferralOption`) names who behaviour
can be referred to ("Head of Year 9 — Mr Shah"). :func:`refer` stores a
:class:`~schoolcomms.ops.models.Referral` and delivers a notice (homepage, e-mailed when
``alert_emails`` is on) to that member of staff, in one transaction, once per (incident,
option): the notice key ``referral:<incident_id>:<option_id>`` is unique, so a double
click, a second user or a re-run finds the first referral instead of making another.
The referred member of staff (or pastoral staff or an admin) actions it with an outcome
note. Every change is in the audit log, written in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from reports.behaviour_pages import incidents_by_id
from reports.recipients import students_by_id
from reports.staff import staff_by_id
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import REFERRAL_STATES, AuditEntry, Notice, Referral, ReferralOption
from schoolcomms.ops.models import utcnow as _utcnow
from schoolcomms.roles import PermissionDenied
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse, WarehouseError
from senders.notices import StaffNotice, deliver_in

MAX_LABEL = 255
MAX_TEXT = 4000
# Roles that may action anyone's referral (besides the member of staff referred to).
ANY_REFERRAL_ROLES: tuple[str, ...] = ("admin", "pastoral")
OPTION_COLUMNS = ("id", "label", "staff_id", "enabled", "updated_at", "updated_by")
REFERRAL_COLUMNS = (
    "id",
    "student_id",
    "incident_id",
    "to_staff_id",
    "reason",
    "status",
    "outcome_note",
    "created_at",
    "created_by",
    "actioned_at",
    "actioned_by",
)
DETAIL_COLUMNS = ("student_name", "form", "year_group", "incident_type", "incident_at", "to_name")


class ReferralProblem(ValueError):
    """A referral or referral option cannot be stored as asked; the message says why."""


@dataclass(frozen=True)
class Referred:
    """What :func:`refer` did: the referral, whether it is new, and who it went to."""

    referral_id: int
    created: bool
    to_staff_id: str
    to_name: str
    emailed_to: str | None


def _actor(actor: str) -> str:
    text = (actor or "").strip()
    if not text:
        raise ValueError('actor must name who acted (a user, "cli" or "scheduler")')
    return text


def _audit(session: Session, actor: str, action: str, target: str, details: Any) -> None:
    session.add(
        AuditEntry(at=_utcnow(), actor=actor, action=action, target=target, details=details)
    )


def _text(value: Any, what: str, *, required: bool, limit: int = MAX_TEXT) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise ReferralProblem(f"Give the {what}.")
    if len(text) > limit:
        raise ReferralProblem(f"The {what} is too long: at most {limit:,} characters.")
    return text


# ---- the referral list -----------------------------------------------------------------


def _option_dict(row: ReferralOption) -> dict[str, Any]:
    return {column: getattr(row, column) for column in OPTION_COLUMNS}


def list_options(engine: Engine, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    """The referral list, by label: id, label, staff_id, enabled, updated_at, updated_by."""
    query = select(ReferralOption).order_by(func.lower(ReferralOption.label))
    if enabled_only:
        query = query.where(ReferralOption.enabled.is_(True))
    with session_scope(engine, immediate=False) as session:
        return [_option_dict(row) for row in session.scalars(query)]


def _check_staff(warehouse: Warehouse | None, staff_id: str) -> None:
    if warehouse is None:
        return
    try:
        known = staff_by_id(warehouse, [staff_id])
    except WarehouseError:
        return  # nothing loaded yet: the option can be checked later
    if staff_id not in known:
        raise ReferralProblem(
            f"There is no member of staff {staff_id!r} in the staff extract; check the id "
            "(it is the staff_id of the staff extract) or load the staff list first."
        )


def _option_fields(label: Any, staff_id: Any) -> tuple[str, str]:
    text = _text(label, "label of the referral option, e.g. 'Head of Year 9'", required=True)
    if len(text) > MAX_LABEL:
        raise ReferralProblem(f"The label is too long: at most {MAX_LABEL} characters.")
    staff = _text(staff_id, "member of staff (their staff id)", required=True, limit=64)
    return text, staff


def _label_taken(session: Session, label: str, option_id: int | None = None) -> bool:
    query = select(ReferralOption.id).where(func.lower(ReferralOption.label) == label.lower())
    if option_id is not None:
        query = query.where(ReferralOption.id != option_id)
    return session.scalar(query) is not None


def add_option(
    engine: Engine,
    *,
    label: str,
    staff_id: str,
    actor: str,
    warehouse: Warehouse | None = None,
) -> int:
    """Add an entry to the referral list; return its id (audit ``referral_option.add``).

    Labels are unique (ignoring case). With ``warehouse``, the staff id must be in the
    staff extract.
    """
    actor = _actor(actor)
    text, staff = _option_fields(label, staff_id)
    _check_staff(warehouse, staff)
    with session_scope(engine) as session:
        if _label_taken(session, text):
            raise ReferralProblem(f"The referral list already has {text!r}; choose another label.")
        row = ReferralOption(label=text, staff_id=staff, enabled=True, updated_by=actor)
        row.updated_at = _utcnow()
        session.add(row)
        session.flush()
        details = {"label": text, "staff_id": staff}
        _audit(session, actor, "referral_option.add", f"referral_option:{row.id}", details)
        return row.id


def update_option(
    engine: Engine,
    option_id: int,
    *,
    actor: str,
    label: str | None = None,
    staff_id: str | None = None,
    warehouse: Warehouse | None = None,
) -> list[str]:
    """Change an option's label and/or member of staff; return the fields changed."""
    actor = _actor(actor)
    with session_scope(engine) as session:
        row = session.get(ReferralOption, option_id)
        if row is None:
            raise ReferralProblem(f"There is no referral option {option_id}.")
        text, staff = _option_fields(
            row.label if label is None else label, row.staff_id if staff_id is None else staff_id
        )
        old = {"label": row.label, "staff_id": row.staff_id}
        new = {"label": text, "staff_id": staff}
        changed = [key for key in old if old[key] != new[key]]
        if not changed:
            return []
        if "staff_id" in changed:
            _check_staff(warehouse, staff)
        if "label" in changed and _label_taken(session, text, option_id):
            raise ReferralProblem(f"The referral list already has {text!r}; choose another label.")
        row.label, row.staff_id = text, staff
        row.updated_at, row.updated_by = _utcnow(), actor
        details = {"changes": {k: {"old": old[k], "new": new[k]} for k in changed}}
        _audit(session, actor, "referral_option.update", f"referral_option:{option_id}", details)
        return changed


def set_option_enabled(engine: Engine, option_id: int, enabled: bool, actor: str) -> bool:
    """Turn a referral option on or off; return whether it changed.

    A disabled option is kept (its referrals still name it) but offered no more. Audit
    ``referral_option.enable`` or ``referral_option.disable``.
    """
    actor = _actor(actor)
    with session_scope(engine) as session:
        row = session.get(ReferralOption, option_id)
        if row is None:
            raise ReferralProblem(f"There is no referral option {option_id}.")
        if row.enabled == bool(enabled):
            return False
        row.enabled = bool(enabled)
        row.updated_at, row.updated_by = _utcnow(), actor
        action = "referral_option.enable" if enabled else "referral_option.disable"
        _audit(session, actor, action, f"referral_option:{option_id}", {"label": row.label})
        return True


# ---- referring -------------------------------------------------------------------------


class _AlreadyReferred(Exception):
    """Another writer stored this (incident, option) first: roll back, report theirs."""


def _notice_key(incident_id: str | None, option_id: int, student_id: str, referral_id: int) -> str:
    if incident_id:
        return f"referral:{incident_id}:{option_id}"
    return f"referral:{student_id}:-:{option_id}:{referral_id}"


def _existing(engine: Engine, key: str) -> int | None:
    with session_scope(engine, immediate=False) as session:
        details = session.scalar(select(Notice.details).where(Notice.key == key))
    return None if details is None else int(details.get("referral_id", 0)) or None


def _notice_text(
    pupil: dict[str, Any], incident: dict[str, Any] | None, label: str, reason: str, actor: str
) -> tuple[str, str]:
    name = pupil["name"] or pupil["student_id"]
    form = f", {pupil['form']}" if pupil["form"] else ""
    title = f"Referral: {name}{form}"
    lines = [f"{actor} referred {name} ({pupil['student_id']}{form}) to you as {label}."]
    if incident is not None:
        when = pd.Timestamp(incident["occurred_at"]).strftime("%d/%m/%Y %H:%M")
        outcome = f"; outcome: {incident['outcome']}" if _filled(incident["outcome"]) else ""
        comment = f" “{incident['comment']}”" if _filled(incident["comment"]) else ""
        lines.append(
            f"Incident {incident['incident_id']} on {when}: {incident['type']} "
            f"({incident['polarity']}){outcome}.{comment}"
        )
    if reason:
        lines.append(f"Reason: {reason}")
    lines.append("Action it under “My referrals” on your homepage.")
    return title, "\n\n".join(lines)


def _filled(value: Any) -> bool:
    return value is not None and not pd.isna(value) and str(value).strip() != ""


def _str(value: Any) -> str:
    return str(value).strip() if _filled(value) else ""


def _pupil_name(row: Any) -> str:
    """Preferred (or legal) forename and surname, as the merge field student.name."""
    first = _str(row["preferred_forename"]) or _str(row["forename"])
    return f"{first} {_str(row['surname'])}".strip()


def refer(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse,
    *,
    student_id: str,
    incident_id: str | None,
    option_id: int,
    reason: str,
    actor: str,
    now: dt.datetime | None = None,
) -> Referred:
    """Refer a pupil (about an incident) to the member of staff of a referral option.

    Stores a Referral and delivers a notice to that member of staff (e-mailed to their
    address in the staff extract when ``alert_emails`` is on), with an audit row
    ``referral.create``, in one transaction. Once per (incident, option): referring the
    same incident to the same option again returns the first referral
    (``created=False``) and changes nothing. Raises :class:`ReferralProblem` for an
    unknown or disabled option, an unknown pupil, or an incident of another pupil.
    """
    actor = _actor(actor)
    reason = _text(reason, "reason", required=False)
    student_id = _text(student_id, "pupil", required=True, limit=64)
    incident_id = (incident_id or "").strip() or None
    with session_scope(engine, immediate=False) as session:
        option = session.get(ReferralOption, int(option_id))
        if option is None:
            raise ReferralProblem(f"There is no referral option {option_id}.")
        option_id, label, to_staff = option.id, option.label, option.staff_id
    pupils = students_by_id(warehouse, [student_id])
    if pupils.empty:
        raise ReferralProblem(f"There is no pupil {student_id!r} in the loaded data.")
    row = pupils.iloc[0]
    pupil = {"student_id": student_id, "name": _pupil_name(row), "form": _str(row["form"])}
    incident = None
    if incident_id:
        found = incidents_by_id(warehouse, [incident_id])
        if found.empty:
            raise ReferralProblem(f"There is no behaviour incident {incident_id!r}.")
        incident = found.iloc[0].to_dict()
        if incident["student_id"] != student_id:
            raise ReferralProblem(
                f"Incident {incident_id} is about pupil {incident['student_id']}, not {student_id}."
            )
        key = _notice_key(incident_id, option_id, student_id, 0)
        earlier = _existing(engine, key)
        if earlier:
            return _outcome(engine, warehouse, settings, earlier, created=False)
    staff = staff_by_id(warehouse, [to_staff]).get(to_staff, {})
    title, body = _notice_text(pupil, incident, label, reason, actor)
    try:
        with session_scope(engine) as session:
            current = session.get(ReferralOption, option_id)
            if current is None or not current.enabled:
                raise ReferralProblem(
                    f"The referral option {label!r} is turned off; choose another, or ask "
                    "an administrator to turn it back on (Settings)."
                )
            referral = Referral(
                student_id=student_id,
                incident_id=incident_id,
                to_staff_id=to_staff,
                reason=reason,
                status="open",
                created_at=now or _utcnow(),
                created_by=actor,
            )
            session.add(referral)
            session.flush()
            notice = StaffNotice(
                key=_notice_key(incident_id, option_id, student_id, referral.id),
                title=title,
                body=body,
                source="referral",
                staff_id=to_staff,
                email=staff.get("email"),
                student_id=student_id,
                details={"referral_id": referral.id, "option_id": option_id, "label": label}
                | {"incident_id": incident_id},
            )
            if not deliver_in(session, settings, [notice], actor=actor, now=now):
                raise _AlreadyReferred
            details = {
                "student_id": student_id,
                "incident_id": incident_id,
                "option_id": option_id,
                "label": label,
                "to_staff_id": to_staff,
                "reason": reason,
            }
            _audit(session, actor, "referral.create", f"referral:{referral.id}", details)
            referral_id = referral.id
    except _AlreadyReferred:
        earlier = _existing(engine, _notice_key(incident_id, option_id, student_id, 0))
        if earlier is None:
            raise
        return _outcome(engine, warehouse, settings, earlier, created=False)
    return _outcome(engine, warehouse, settings, referral_id, created=True)


def _outcome(
    engine: Engine, warehouse: Warehouse, settings: Settings, referral_id: int, *, created: bool
) -> Referred:
    with session_scope(engine, immediate=False) as session:
        row = session.get(Referral, referral_id)
        if row is None:
            raise ReferralProblem(f"There is no referral {referral_id}.")
        to_staff = row.to_staff_id
    staff = staff_by_id(warehouse, [to_staff]).get(to_staff, {})
    email = staff.get("email") if bool(settings["alert_emails"]) else None
    return Referred(referral_id, created, to_staff, staff.get("name") or to_staff, email)


# ---- the referrals -----------------------------------------------------------------------


def _frame(rows: Iterable[Referral]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{c: getattr(r, c) for c in REFERRAL_COLUMNS} for r in rows], columns=REFERRAL_COLUMNS
    )
    for column in ("created_at", "actioned_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["id"] = frame["id"].astype("int64")
    return frame


def _check_status(status: str | None) -> None:
    if status is not None and status not in REFERRAL_STATES:
        raise ReferralProblem(f"Unknown referral status {status!r}; use {REFERRAL_STATES}.")


def referrals_for(
    engine: Engine,
    staff_id: str | None,
    status: str | None = "open",
    *,
    warehouse: Warehouse | None = None,
) -> pd.DataFrame:
    """The referrals to a member of staff (``None``: everyone's), newest first.

    ``status`` is ``open`` (the default: "my referrals to action"), ``actioned``,
    ``closed`` or ``None`` for all. Columns :data:`REFERRAL_COLUMNS` (times UTC); with
    ``warehouse``, also :data:`DETAIL_COLUMNS` (pupil, incident and staff names).
    """
    _check_status(status)
    query = select(Referral).order_by(Referral.created_at.desc(), Referral.id.desc())
    if staff_id is not None:
        query = query.where(Referral.to_staff_id == staff_id)
    if status is not None:
        query = query.where(Referral.status == status)
    with session_scope(engine, immediate=False) as session:
        frame = _frame(session.scalars(query))
    return frame if warehouse is None else with_details(warehouse, frame)


def referrals_by_incident(engine: Engine, incident_ids: Iterable[str]) -> pd.DataFrame:
    """Referrals about the given incidents (any status): :data:`REFERRAL_COLUMNS`."""
    wanted = {str(i) for i in incident_ids if i}
    with session_scope(engine, immediate=False) as session:
        rows = session.scalars(
            select(Referral).where(Referral.incident_id.is_not(None)).order_by(Referral.id)
        )
        # The referral table is small and the incident list can be long: filter here.
        frame = _frame(r for r in rows if r.incident_id in wanted)
    return frame


def with_details(warehouse: Warehouse, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (referrals) with the pupil's name, form and year group, the incident's
    type and time, and the referred member of staff's name (:data:`DETAIL_COLUMNS`)."""
    out = frame.copy()
    for column in DETAIL_COLUMNS:
        out[column] = pd.Series([None] * len(out), index=out.index, dtype=object)
    if out.empty:
        return out
    pupils = students_by_id(warehouse, sorted(set(out["student_id"])))
    names = {
        r["student_id"]: (_pupil_name(r), _str(r["form"]), _str(r["year_group"]))
        for r in pupils.to_dict("records")
    }
    incidents = incidents_by_id(warehouse, out["incident_id"].dropna())
    types = {r.incident_id: (r.type, r.occurred_at) for r in incidents.itertuples(index=False)}
    staff = staff_by_id(warehouse, out["to_staff_id"])
    out["student_name"] = out["student_id"].map(lambda s: names.get(s, (None,) * 3)[0])
    out["form"] = out["student_id"].map(lambda s: names.get(s, (None,) * 3)[1])
    out["year_group"] = out["student_id"].map(lambda s: names.get(s, (None,) * 3)[2])
    out["incident_type"] = out["incident_id"].map(lambda i: types.get(i, (None, None))[0])
    out["incident_at"] = out["incident_id"].map(lambda i: types.get(i, (None, None))[1])
    out["to_name"] = out["to_staff_id"].map(lambda s: staff.get(s, {}).get("name") or s)
    return out


def can_action_any(roles: Iterable[str]) -> bool:
    """Whether these roles may action anyone's referral (pastoral staff and admins)."""
    return bool(set(roles) & set(ANY_REFERRAL_ROLES))


def _change(
    engine: Engine,
    referral_id: int,
    *,
    to: str,
    note: str,
    actor: str,
    staff_id: str | None,
    is_admin: bool,
) -> None:
    actor = _actor(actor)
    with session_scope(engine) as session:
        row = session.get(Referral, int(referral_id))
        if row is None:
            raise ReferralProblem(f"There is no referral {referral_id}.")
        if not is_admin and (not staff_id or row.to_staff_id != staff_id):
            raise PermissionDenied(
                "Only the member of staff the pupil was referred to, pastoral staff or an "
                "administrator may change this referral."
            )
        allowed = {"actioned": ("open",), "closed": ("open", "actioned")}[to]
        if row.status not in allowed:
            by = f" by {row.actioned_by}" if row.actioned_by else ""
            raise ReferralProblem(f"Referral {referral_id} is already {row.status}{by}.")
        before = row.status
        row.status = to
        if to == "actioned":
            row.outcome_note = note
        elif note:
            row.outcome_note = f"{row.outcome_note}\n\n{note}".strip()
        if to == "actioned" or row.actioned_at is None:
            row.actioned_at, row.actioned_by = _utcnow(), actor
        action = "referral.action" if to == "actioned" else "referral.close"
        details = {"student_id": row.student_id, "from": before, "to": to, "note": note}
        _audit(session, actor, action, f"referral:{referral_id}", details)


def action_referral(
    engine: Engine,
    referral_id: int,
    *,
    outcome_note: str,
    actor: str,
    staff_id: str | None,
    is_admin: bool,
) -> None:
    """Mark an open referral actioned with what was done (audit ``referral.action``).

    Only the member of staff referred to (``staff_id``) may, or someone who may action
    any referral (``is_admin``: see :func:`can_action_any`); anyone else gets
    :class:`~schoolcomms.roles.PermissionDenied`. The note is required.
    """
    note = _text(outcome_note, "outcome: what was done", required=True)
    _change(
        engine,
        referral_id,
        to="actioned",
        note=note,
        actor=actor,
        staff_id=staff_id,
        is_admin=is_admin,
    )


def close_referral(
    engine: Engine,
    referral_id: int,
    *,
    actor: str,
    staff_id: str | None,
    is_admin: bool,
    note: str = "",
) -> None:
    """Close an open or actioned referral (audit ``referral.close``); same rights as actioning."""
    _change(
        engine,
        referral_id,
        to="closed",
        note=_text(note, "note", required=False),
        actor=actor,
        staff_id=staff_id,
        is_admin=is_admin,
    )
