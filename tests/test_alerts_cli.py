"""``schoolcomms alerts`` and ``schoolcomms alert-rules``, run in-process on a real data folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli
from sqlalchemy import select
from test_alerts import load, school_day

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import AuditEntry, Notice
from schoolcomms.settings import Settings

ALERT_KEYS = {
    "rule_id",
    "rule",
    "kind",
    "key",
    "student_id",
    "lesson_id",
    "title",
    "body",
    "urgent",
    "recipients",
    "unresolved",
    "parent_messages",
    "parent_excluded",
    "details",
}


@pytest.fixture
def school(settings: Settings, tmp_path: Path) -> Settings:
    load(settings, tmp_path / "day", school_day())
    return settings


def ok(result: object) -> str:
    assert result.exit_code == 0, result.output + result.stderr  # type: ignore[attr-defined]
    return result.stdout  # type: ignore[attr-defined]


def add(cli: Cli, *args: str) -> str:
    return ok(cli("alert-rules", "add", *args))


def test_alerts_json_dry_run_then_fire_then_nothing(cli: Cli, school: Settings) -> None:
    add(cli, "--name", "Truancy", "--kind", "truancy", "--notify",
        '{"roles": ["form_tutor", "attendance_officer"]}', "--urgent")  # fmt: skip
    planned = json.loads(ok(cli("alerts", "--at", "2026-11-20 11:10", "--dry-run", "--json")))
    assert len(planned) == 1 and set(planned[0]) == ALERT_KEYS
    alert = planned[0]
    assert (alert["rule"], alert["kind"], alert["key"]) == ("Truancy", "truancy", "S1:2026-11-20")
    assert (alert["student_id"], alert["lesson_id"], alert["urgent"]) == ("S1", "MA3", True)
    assert [(r["staff_id"], r["why"]) for r in alert["recipients"]] == [
        ("T2", "form tutor (form 10A)"),
        ("T5", "attendance officer"),
    ]
    assert set(alert["recipients"][0]) == {"staff_id", "name", "email", "why"}
    assert alert["unresolved"] == [] and alert["parent_messages"] == []
    with session_scope(open_ops(school), immediate=False) as session:
        assert list(session.scalars(select(Notice))) == []

    fired = json.loads(ok(cli("alerts", "--at", "2026-11-20 11:10", "--json")))
    assert [a["key"] for a in fired] == ["S1:2026-11-20"]
    assert fired[0]["fired"] == {"notices": 2, "parent_messages": 0}
    assert json.loads(ok(cli("alerts", "--at", "2026-11-20 11:10", "--dry-run", "--json"))) == []
    text = ok(cli("alerts", "--at", "2026-11-20 11:10"))
    assert "0 alert(s) fired as of 2026-11-20 11:10." in text


def test_alerts_text_and_stale_registers(cli: Cli, school: Settings) -> None:
    add(cli, "--name", "O", "--kind", "attendance_code", "--params", '{"codes": ["O"]}',
        "--notify", '{"roles": ["form_tutor"]}')  # fmt: skip
    # 14:00: the newest mark (11:05) is 55 minutes older than the last lesson's end.
    stale = cli("alerts", "--at", "2026-11-20 14:00", "--dry-run")
    assert stale.exit_code == 0
    assert "Warning: attendance rule(s) left out (O): registers are stale" in stale.stderr
    assert "0 alert(s) would fire" in stale.stdout
    anyway = ok(cli("alerts", "--at", "2026-11-20 14:00", "--dry-run", "--even-if-stale"))
    assert "3 alert(s) would fire as of 2026-11-20 14:00." in anyway
    assert "-> Mr Tom Tutor (T2)" in anyway
    assert "gap: no form tutor for form 8B" in anyway


def test_alerts_refuses_bad_input(cli: Cli) -> None:
    result = cli("alerts", "--at", "20/11/2026 11:10")
    assert result.exit_code == 2 and '"YYYY-MM-DD HH:MM"' in result.stderr
    add(cli, "--name", "T", "--kind", "truancy", "--notify", '{"roles": ["form_tutor"]}')
    result = cli("alerts", "--at", "2026-11-20 11:10", "--even-if-stale")
    assert result.exit_code == 2 and "Error:" in result.stderr and "Traceback" not in result.output


def test_alert_rules_add_list_switch_delete_audited(cli: Cli, settings: Settings) -> None:
    assert "No alert rules yet" in ok(cli("alert-rules"))
    out = add(
        cli,
        "--name",
        "Three in a week",
        "--kind",
        "behaviour_threshold",
        "--params",
        '{"threshold": 3}',
        "--notify",
        '{"roles": ["form_tutor"], "staff_ids": ["T1"]}',
        "--no-email",
    )
    assert out.startswith("Added rule 1: Three in a week")
    listed = json.loads(ok(cli("alert-rules", "--json")))
    assert [(r["id"], r["name"], r["enabled"], r["email"]) for r in listed] == [
        (1, "Three in a week", True, False)
    ]
    assert listed[0]["params"] == {
        "threshold": 3,
        "types": [],
        "polarity": "negative",
        "window": "week",
    }
    assert listed[0]["summary"] == "3 or more negative incidents in a calendar week (Monday–Sunday)"
    assert listed[0]["recipients"] == "Form tutor, staff T1"
    assert listed[0]["last_fired"] is None and listed[0]["firings"] == 0
    assert "Rule 1 disabled." in ok(cli("alert-rules", "disable", "1"))
    assert "already disabled" in ok(cli("alert-rules", "disable", "1"))
    assert "[off] Three in a week" in ok(cli("alert-rules"))
    assert "Rule 1 enabled." in ok(cli("alert-rules", "enable", "1"))
    assert "Rule 1 deleted." in ok(cli("alert-rules", "delete", "1"))
    missing = cli("alert-rules", "enable", "1")
    assert missing.exit_code == 2 and "There is no alert rule 1." in missing.stderr
    with session_scope(open_ops(settings), immediate=False) as session:
        audit = [(a.actor, a.action) for a in session.scalars(select(AuditEntry))]
    assert [action for _, action in audit] == [
        "alert_rule.create",
        "alert_rule.disable",
        "alert_rule.enable",
        "alert_rule.delete",
    ]
    assert all(actor.startswith("cli") for actor, _ in audit)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "nope", "--notify", "{}"], "Unknown kind 'nope'"),
        (["--kind", "truancy", "--notify", "{roles"], "--notify is not valid JSON"),
        (["--kind", "truancy", "--notify", "{}"], "Nobody would be told"),
        (
            [
                "--kind",
                "attendance_code",
                "--params",
                '{"codes": ["QQ"]}',
                "--notify",
                '{"roles": ["office"]}',
            ],
            "'QQ' is not an attendance code",
        ),  # fmt: skip
    ],
)
def test_alert_rules_add_refuses_bad_rules(cli: Cli, args: list[str], message: str) -> None:
    result = cli("alert-rules", "add", "--name", "Bad", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert json.loads(ok(cli("alert-rules", "--json"))) == []


def test_alert_rules_seed_once(cli: Cli) -> None:
    first = ok(cli("alert-rules", "seed"))
    assert first.startswith("Added ") and "Truancy" in first
    assert ok(cli("alert-rules", "seed")).strip() == "Added 0 starter rule(s)."
