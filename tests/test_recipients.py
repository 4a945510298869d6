"""Recipient planning: the rule, siblings, and every exclusion with its reason."""

from __future__ import annotations

import pandas as pd

from senders.recipients import RecipientRule, address_block, choose_recipients

STUDENTS = pd.DataFrame(
    [
        {
            "student_id": "S1",
            "forename": "Amy",
            "preferred_forename": None,
            "surname": "Baker",
            "form": "7A",
            "year_group": "7",
            "status": "C01",
        },
        {
            "student_id": "S2",
            "forename": "Ben",
            "preferred_forename": None,
            "surname": "Baker",
            "form": "9B",
            "year_group": "9",
            "status": "C01",
        },
        {
            "student_id": "S3",
            "forename": "Cat",
            "preferred_forename": None,
            "surname": "Cole",
            "form": "7A",
            "year_group": "7",
            "status": "C01",
        },
        {
            "student_id": "S4",
            "forename": "Dan",
            "preferred_forename": None,
            "surname": "Dee",
            "form": "7A",
            "year_group": "7",
            "status": "C01",
        },
    ]
)


def contact(student, cid, priority=1, **extra):
    row = {
        "student_id": student,
        "contact_id": cid,
        "title": "Mrs",
        "forename": "Pat",
        "surname": cid,
        "relationship": "Mother",
        "priority": priority,
        "parental_responsibility": True,
        "mobile": "07400 100001",
        "mobile_e164": "+447400100001",
        "email": f"{cid.lower()}@example.com",
        "address_line1": "1 High St",
        "address_line2": None,
        "town": "Leeds",
        "postcode": "LS1 1AA",
        "sms_consent": True,
        "email_consent": True,
    }
    row.update(extra)
    return row


def plan(contacts, channel="sms", order=("S1", "S2", "S3", "S4"), opted_out=None, **rule):
    return choose_recipients(
        STUDENTS, pd.DataFrame(contacts), RecipientRule(channel, **rule), list(order), opted_out
    )


def reasons(excluded):
    return {(e.student_id, e.contact_id): e.reason for e in excluded}


def test_siblings_share_one_message_naming_both():
    recipients, excluded = plan([contact("S1", "C1"), contact("S2", "C1")], order=("S1", "S2"))
    assert len(recipients) == 1 and recipients[0].student_ids == ["S1", "S2"]
    assert recipients[0].to == "+447400100001" and excluded == []


def test_each_reason_for_leaving_a_contact_out():
    contacts = [
        contact("S1", "C1", mobile=None, mobile_e164=None),
        contact("S2", "C2", mobile="0123", mobile_e164=None, sms_consent=True),
        contact("S3", "C3", sms_consent=False),
        contact("S4", "C4", mobile_e164="+447400100009"),
    ]
    recipients, excluded = plan(contacts, opted_out={"+447400100009"})
    assert recipients == []
    assert reasons(excluded) == {
        ("S1", "C1"): "no mobile",
        ("S2", "C2"): "invalid number (0123)",
        ("S3", "C3"): "no SMS consent",
        ("S4", "C4"): "opted out of SMS",
    }


def test_priority_and_parental_responsibility_rules():
    contacts = [
        contact("S1", "C1", 1, parental_responsibility=False, mobile_e164="+447400100011"),
        contact("S1", "C2", 2, mobile_e164="+447400100012"),
        contact("S1", "C3", 3, mobile_e164="+447400100013"),
    ]
    assert [r.contact_id for r in plan(contacts, order=["S1"])[0]] == ["C1"]
    assert [r.contact_id for r in plan(contacts, order=["S1"], max_priority=2)[0]] == ["C1", "C2"]
    recipients, excluded = plan(
        contacts, order=["S1"], max_priority=2, parental_responsibility_only=True
    )
    assert [r.contact_id for r in recipients] == ["C2"] and excluded == []
    recipients, excluded = plan([contact("S1", "C3", 3)], order=["S1"])
    assert recipients == [] and reasons(excluded) == {("S1", None): "no priority 1 contacts"}


def test_email_and_letter_channels():
    contacts = [
        contact("S1", "C1"),
        contact("S2", "C2", email="not-an-address"),
        contact("S3", "C3", email_consent=False),
        contact("S4", "C4", email=None),
    ]
    recipients, excluded = plan(contacts, channel="email")
    assert [r.to for r in recipients] == ["c1@example.com"]
    assert reasons(excluded) == {
        ("S2", "C2"): "invalid e-mail (not-an-address)",
        ("S3", "C3"): "no e-mail consent",
        ("S4", "C4"): "no e-mail",
    }
    recipients, excluded = plan(
        [contact("S1", "C1"), contact("S2", "C2", postcode=None)],
        channel="letter",
        order=["S1", "S2"],
    )
    assert recipients[0].to == "Mrs Pat C1\n1 High St\nLeeds\nLS1 1AA"
    assert reasons(excluded) == {("S2", "C2"): "no postal address"}


def test_one_message_per_number_and_unknown_pupils():
    contacts = [contact("S1", "C1"), contact("S3", "C9")]  # two contacts, one phone
    recipients, excluded = plan(contacts, order=["S1", "S3", "S404"])
    assert [r.contact_id for r in recipients] == ["C1"]
    assert "same number as contact C1" in reasons(excluded)[("S3", "C9")]
    assert reasons(excluded)[("S404", None)] == "not a pupil in the current data"


def test_address_block_skips_blank_lines():
    assert (
        address_block(
            {
                "title": None,
                "forename": "Al",
                "surname": "Bo",
                "address_line1": "2 Rd",
                "address_line2": "",
                "town": None,
                "postcode": "AB1 2CD",
            }
        )
        == "Al Bo\n2 Rd\nAB1 2CD"
    )
