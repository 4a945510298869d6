"""Contact log and pastoral log, on a real SQLite ops store."""

from __future__ import annotations

import datetime as dt

import pytest

from schoolcomms.ops.db import open_ops
from schoolcomms.ops.history import recent_audit
from senders.logbook import (
    LogbookError,
    add_pastoral,
    contact_history,
    pastoral_history,
    record_contact,
)


def test_record_and_read_back_a_contact(settings):
    engine = open_ops(settings)
    when = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    entry = record_contact(
        engine,
        student_id="S1",
        method="phone",
        actor="ms.head@example.org",
        happened_at=when,
        contact_id="C1",
        contact_name="Mrs Able",
        outcome="Left a message",
        notes="Will call back after 3pm",
    )
    record_contact(
        engine,
        student_id="S2",
        method="meeting",
        actor="ms.head@example.org",
        happened_at=when + dt.timedelta(hours=1),
    )
    history = contact_history(engine, "S1")
    assert history["id"].tolist() == [entry]
    row = history.iloc[0]
    assert (row.method, row.outcome, row.contact_name) == ("phone", "Left a message", "Mrs Able")
    assert row.happened_at == when
    assert contact_history(engine)["student_id"].tolist() == ["S2", "S1"]
    audit = recent_audit(engine, action="contact.record")
    assert set(audit["actor"]) == {"ms.head@example.org"} and len(audit) == 2


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"student_id": " "}, "Choose the pupil"),
        ({"method": "pigeon"}, "phone, meeting"),
        ({"direction": "sideways"}, "Direction"),
        ({"happened_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)}, "future"),
        ({"happened_at": dt.datetime(2026, 1, 1)}, "time zone"),
    ],
)
def test_bad_entries_are_refused_in_words(settings, kwargs, words):
    engine = open_ops(settings)
    args = {"student_id": "S1", "method": "phone", "actor": "t", **kwargs}
    with pytest.raises(LogbookError, match=words):
        record_contact(engine, **args)
    assert contact_history(engine).empty


def test_pastoral_log(settings):
    engine = open_ops(settings)
    add_pastoral(
        engine,
        student_id="S1",
        kind="absence_text",
        summary="Texted Mrs Able",
        actor="scheduler",
        details={"lesson_id": "L1"},
    )
    history = pastoral_history(engine, "S1")
    assert history[["kind", "summary", "created_by"]].values.tolist() == [
        ["absence_text", "Texted Mrs Able", "scheduler"]
    ]
