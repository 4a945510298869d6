"""`schoolcomms send`, `dispatch` and `messages` end to end on the minimal school.

Real warehouse, real SQLite ops store, the real file gateway (the embedded default):
what `dispatch` sends is read back from <data dir>/outbox/sms.
"""

from __future__ import annotations

import json

import pytest
from conftest import minimal_school, write_extracts

SMART = "Hello {{ contact.name }}, {{ student_names }}’s report is ready – thanks…"


@pytest.fixture
def school(loaded, cli):
    return cli


def send(cli, *args, env=None):
    return cli("send", *args, env=env)


def test_dry_run_json_has_exactly_the_documented_shape(school):
    result = send(
        school, "--channel", "sms", "--students", "S1,S2,S3", "--body", SMART, "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert set(plan) == {"messages", "excluded", "total_cost_pence"}
    by_contact = {m["contact_id"]: m for m in plan["messages"]}
    assert set(by_contact) == {"C1", "C2"}
    for message in plan["messages"]:
        assert set(message) == {
            "student_id",
            "contact_id",
            "to",
            "body",
            "segments",
            "encoding",
            "cost_pence",
        }
    # Siblings S2 and S3 share contact C2: one message naming both.
    sibling = by_contact["C2"]
    assert sibling["student_id"] == "S2" and sibling["to"] == "+447400200002"
    assert sibling["body"] == "Hello Mr Baker, Ben and Cat's report is ready - thanks..."
    assert sibling["encoding"] == "gsm7" and sibling["segments"] == 1
    assert sibling["cost_pence"] == 3
    assert plan["total_cost_pence"] == 6 and plan["excluded"] == []
    # A dry run writes nothing.
    assert json.loads(school("messages", "--json").stdout) == []


def test_exclusions_are_listed_with_reasons(school):
    result = send(
        school,
        "--channel",
        "email",
        "--students",
        "S1,S2,S3",
        "--subject",
        "Hi",
        "--body",
        "Dear {{ contact.name }}",
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [m["to"] for m in plan["messages"]] == ["alice@home.example.com"]
    # Shown once per pupil: both siblings' parent is unreachable by e-mail.
    assert plan["excluded"] == [
        {"student_id": "S2", "contact_id": "C2", "reason": "no e-mail consent"},
        {"student_id": "S3", "contact_id": "C2", "reason": "no e-mail consent"},
    ]
    assert plan["total_cost_pence"] == 0


def test_send_dispatch_and_message_log(school, settings):
    result = send(school, "--channel", "sms", "--students", "S1,S2,S3", "--body", SMART)
    assert result.exit_code == 0, result.output
    assert "Queued 2 message(s)" in result.stdout and "NOT sent" in result.stdout
    queued = json.loads(school("messages", "--json").stdout)
    assert sorted(m["status"] for m in queued) == ["queued", "queued"]
    result = school("dispatch")
    assert result.exit_code == 0, result.output
    outbox = [
        json.loads(line)
        for path in (settings.data_dir / "outbox" / "sms").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert sorted(line["to"] for line in outbox) == ["+447400200001", "+447400200002"]
    log = json.loads(school("messages", "--json").stdout)
    assert sorted(m["status"] for m in log) == ["sent", "sent"]
    # A second dispatch sends nothing again.
    school("dispatch")
    again = [
        line
        for path in (settings.data_dir / "outbox" / "sms").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert len(again) == 2


def test_over_budget_needs_confirmation(school):
    env = {"SCHOOLCOMMS_SMS_BATCH_BUDGET_PENCE": "5"}
    result = send(school, "--channel", "sms", "--students", "S1,S2", "--body", "Hi", env=env)
    assert result.exit_code == 2
    assert "more than" in result.output and "confirm" in result.output
    assert json.loads(school("messages", "--json").stdout) == []
    result = send(
        school,
        "--channel",
        "sms",
        "--students",
        "S1,S2",
        "--body",
        "Hi",
        "--confirm-over-budget",
        env=env,
    )
    assert result.exit_code == 0, result.output


def test_bad_requests_are_refused_in_words(school):
    result = send(school, "--channel", "sms", "--students", "S1", "--template", "Nope")
    assert result.exit_code == 2 and "no template called 'Nope'" in result.output
    result = send(
        school, "--channel", "sms", "--students", "S1", "--body", "Hi {{ pupil.name }}", "--dry-run"
    )
    assert result.exit_code == 2 and "pupil" in result.output
    result = send(school, "--channel", "sms", "--students", "S1")
    assert result.exit_code == 2 and "--template NAME or --body TEXT" in result.output


def test_letters_are_merged_into_a_pdf_with_the_batch(school, settings, tmp_path):
    body = "We are pleased with {{ student.forename }}'s progress."
    result = send(school, "--channel", "letter", "--students", "S1", "--body", body)
    # The minimal school has no postal addresses: the contact is left out, nothing queued.
    assert result.exit_code == 2 and "left out" in result.output
    contacts = minimal_school()["contacts"]
    contacts[0].update(address_line1="1 High Street", town="Leeds", postcode="LS1 1AA")
    write_extracts(tmp_path / "update", {"contacts": contacts})
    assert school("load", tmp_path / "update").exit_code == 0
    result = send(school, "--channel", "letter", "--students", "S1", "--body", body, "--json")
    assert result.exit_code == 0, result.output
    batch = json.loads(result.stdout)["batch_id"]
    pdf = settings.data_dir / "letters" / f"batch-{batch}.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.read_bytes().count(b"/Type /Page\n") >= 1
    assert school("dispatch", "--channel", "letter").exit_code == 0
    log = json.loads(school("messages", "--json").stdout)
    assert [(m["channel"], m["status"], m["to_address"].splitlines()[-1]) for m in log] == [
        ("letter", "sent", "LS1 1AA")
    ]


def test_pupils_are_e_mailed_at_their_own_address(school, settings):
    """Homework: e-mail the pupils themselves. S1 has an address; S2 has none (left out
    in words); an SMS to pupils is refused."""
    result = send(
        school,
        "--channel",
        "email",
        "--to-pupils",
        "--students",
        "S1,S2",
        "--subject",
        "Homework",
        "--body",
        "Hi {{ contact.forename }}, your homework is overdue.",
        "--json",
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [(m["contact_id"], m["to"]) for m in plan["messages"]] == [
        ("pupil:S1", "ann@pupils.example.com")
    ]
    assert plan["messages"][0]["body"].startswith("Hi Ann, your homework is overdue.")
    assert plan["excluded"] == [
        {
            "student_id": "S2",
            "contact_id": "pupil:S2",
            "reason": "no pupil e-mail in the students extract",
        }
    ]
    assert school("dispatch").exit_code == 0
    sent = json.loads(school("messages", "--json").stdout)
    assert [(m["contact_id"], m["status"]) for m in sent] == [("pupil:S1", "sent")]
    refused = send(
        school, "--channel", "sms", "--to-pupils", "--students", "S1", "--body", "Hi", "--json"
    )
    assert refused.exit_code == 2 and "e-mail only" in refused.output
