"""The whole SMS path against the Text Anywhere stand-in: outbox → dispatcher → gateway →
delivery polling, counted at the stand-in (real HTTP on 127.0.0.1, real SQLite store)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from standins.textanywhere import CLIENT_ID, CLIENT_PASS

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import Message
from schoolcomms.settings import Settings
from senders.delivery import poll_delivery
from senders.dispatcher import Dispatcher
from senders.messengers import build_messengers
from senders.outbox import NewMessage, create_batch, is_opted_out, message_log

OK, OPTED_OUT, BUSY = "+447400100001", "+447400100002", "+447400100003"


def test_dispatch_then_poll_through_text_anywhere(tmp_path, textanywhere_server):
    server = textanywhere_server
    server.script(OK, statuses=["49", "45"])  # queued, then delivered to the handset
    server.script(OPTED_OUT, send_code="51")
    server.script(BUSY, http_status=429, retry_after="120")
    settings = Settings(
        tmp_path / "data",
        env={},
        overrides={
            "sms_provider": "textanywhere",
            "textanywhere_url": server.base_url,
            "textanywhere_client_id": CLIENT_ID,
            "textanywhere_client_pass": CLIENT_PASS,
            "sms_rate_per_second": 0,
        },
    )
    engine = open_ops(settings)
    messages = [
        NewMessage("sms", to, f"Message to {to}", idempotency_key=f"k{to}")
        for to in (OK, OPTED_OUT, BUSY)
    ]
    create_batch(
        engine,
        created_by="test",
        channel="sms",
        template_name=None,
        subject=None,
        body_template="",
        filter={},
        messages=messages,
        excluded=0,
        estimated_cost_pence=9,
    )
    messengers = build_messengers(settings)
    Dispatcher(engine, messengers, settings).run_once("sms")
    log = message_log(engine).set_index("to_address")
    assert log.loc[OK, "status"] == "sent"
    assert log.loc[OPTED_OUT, "status"] == "failed" and "opt" in log.loc[OPTED_OUT, "error"]
    assert log.loc[BUSY, "status"] == "queued"
    # The provider's opt-out is remembered: the next plan lists the parent as opted out.
    assert is_opted_out(engine, "sms", OPTED_OUT) and not is_opted_out(engine, "sms", OK)
    # The stand-in saw each message exactly once, with our message id as Client_Ref.
    refs = [r.form["Client_Ref"] for r in server.sends()]
    assert sorted(refs) == sorted(str(i) for i in log["id"])
    # A second run before the 429's Retry-After sends nothing again.
    Dispatcher(engine, messengers, settings).run_once("sms")
    assert len(server.sends()) == 3
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert poll_delivery(engine, messengers, now=later) == 0  # still queued at the network
    assert poll_delivery(engine, messengers, now=later) == 1  # now delivered
    with session_scope(engine, immediate=False) as session:
        delivered = session.scalars(select(Message).where(Message.to_address == OK)).one()
    assert delivered.status == "delivered" and delivered.provider_status == "45"
