"""Twilio SMS against a local stand-in for the Messages API (never the real Twilio)."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_FIXTURES
from standins import ProxyStandin
from standins.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioStandin

from schoolcomms.settings import Settings
from senders.base import (
    AccountProblem,
    Messenger,
    OptedOut,
    OutgoingMessage,
    RateLimited,
    Rejected,
    StatusSource,
    Transient,
)
from senders.channels.http import USER_AGENT
from senders.channels.twilio import TwilioSms

NUMBER = "+447700900123"
FROM = "+447700900001"
SERVICE = "MG" + "a" * 32
EXTRACT = SHARED_FIXTURES / "providers" / "twilio" / "twilio_message_resource_extract.json"


@pytest.fixture
def twilio_server() -> Iterator[TwilioStandin]:
    """A started stand-in on 127.0.0.1 (see tests/standins/twilio.py)."""
    with TwilioStandin() as server:
        yield server


@pytest.fixture
def proxy_server() -> Iterator[ProxyStandin]:
    """A recording forwarding proxy on 127.0.0.1."""
    with ProxyStandin() as server:
        yield server


def sms(message_id: int = 42, to: str = NUMBER, body: str = "Hello from school") -> OutgoingMessage:
    return OutgoingMessage(message_id, f"key-{message_id}", "sms", to, body)


def make_settings(tmp_path: Path, server: TwilioStandin, **overrides: Any) -> Settings:
    values = {
        "twilio_url": server.url,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": FROM,
        "sms_timeout_seconds": 3.0,
        **overrides,
    }
    return Settings(tmp_path / "data", env={}, overrides=values)


@pytest.fixture
def tw(tmp_path: Path, twilio_server: TwilioStandin) -> Iterator[TwilioSms]:
    sender = TwilioSms(make_settings(tmp_path, twilio_server))
    sender.open()
    yield sender
    sender.close()


def test_send_posts_the_documented_request_with_basic_auth(tw, twilio_server) -> None:
    result = tw.send(sms(42))

    [req] = twilio_server.requests
    assert (req.method, req.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert req.headers["authorization"] == f"Basic {expected}"
    assert req.headers["user-agent"] == USER_AGENT
    assert req.form == {"To": NUMBER, "From": FROM, "Body": "Hello from school"}
    assert (result.provider, result.provider_status, result.status) == ("twilio", "queued", "sent")
    assert result.provider_ref in twilio_server.messages
    assert result.provider_ref.startswith("SM") and len(result.provider_ref) == 34


def test_request_fields_are_in_the_openapi_extract(tw, twilio_server) -> None:
    extract = json.loads(EXTRACT.read_text(encoding="utf-8"))
    schema = extract["create_message_request"]["content"]["application/x-www-form-urlencoded"]
    tw.send(sms())
    assert set(twilio_server.requests[0].form) <= set(schema["schema"]["properties"])
    statuses = set(extract["enums"]["message_enum_status"]["enum"])
    from senders.channels.twilio import STATUS_MAP

    assert set(STATUS_MAP) <= statuses


def test_messaging_service_replaces_from(tmp_path, twilio_server) -> None:
    settings = make_settings(tmp_path, twilio_server, twilio_messaging_service_sid=SERVICE)
    result = TwilioSms(settings).send(sms())
    assert twilio_server.requests[0].form == {
        "To": NUMBER,
        "MessagingServiceSid": SERVICE,
        "Body": "Hello from school",
    }
    assert result.provider_status == "accepted"


def test_protocols_are_implemented() -> None:
    sender = TwilioSms(Settings(Path("/nonexistent"), env={}))
    assert isinstance(sender, Messenger) and isinstance(sender, StatusSource)
    assert (sender.channel, sender.name) == ("sms", "twilio")


def test_each_send_arrives_once(tw, twilio_server) -> None:
    refs = {tw.send(sms(i)).provider_ref for i in range(3)}
    assert len(refs) == 3 and len(twilio_server.creates()) == 3


def test_wrong_token_is_an_account_problem_and_never_shown(tmp_path, twilio_server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-Tok3n-value"
    sender = TwilioSms(make_settings(tmp_path, twilio_server, twilio_auth_token=wrong))
    with pytest.raises(AccountProblem) as err:
        sender.send(sms())
    assert err.value.provider_status == "20003"
    assert "Authenticate" in str(err.value)
    encoded = base64.b64encode(f"{ACCOUNT_SID}:{wrong}".encode()).decode()
    for secret in (wrong, encoded):
        assert secret not in str(err.value) and secret not in caplog.text


def test_suspended_account_is_an_account_problem(tw, twilio_server) -> None:
    twilio_server.suspended = True
    with pytest.raises(AccountProblem, match="suspended"):
        tw.send(sms())


def test_missing_configuration_fails_before_any_request(tmp_path, twilio_server) -> None:
    settings = make_settings(tmp_path, twilio_server, twilio_from="", twilio_auth_token="")
    with pytest.raises(AccountProblem, match="twilio_auth_token.*twilio_from"):
        TwilioSms(settings).send(sms())
    assert twilio_server.requests == []


@pytest.mark.parametrize(
    ("code", "ours", "twilios"),
    [
        (21211, "invalid 'To' phone number", "not a valid phone number"),
        (21614, "not a mobile number", "not a valid mobile number"),
        (21610, "unsubscribed (replied STOP)", "unsubscribed recipient"),
        # An unknown 4xx code: this message, as it is, will never go.
        (21999, "Twilio refused the message", "Error"),
    ],
)
def test_refused_numbers_are_rejected_with_twilios_message(
    tw, twilio_server, code, ours, twilios
) -> None:
    twilio_server.script(NUMBER, error=code)
    with pytest.raises(Rejected) as err:
        tw.send(sms())
    assert err.value.provider_status == str(code)
    message = str(err.value)
    assert ours in message and twilios in message and f"Twilio error {code}" in message
    # Only STOP is an opt-out, which the outbox remembers.
    assert isinstance(err.value, OptedOut) == (code == 21610)


def test_malformed_to_is_rejected_before_any_request(tw, twilio_server) -> None:
    with pytest.raises(Rejected):  # refused locally, before Twilio is asked
        tw.send(sms(to="07700 900123"))
    assert twilio_server.requests == []


def test_429_is_rate_limited_with_retry_after(tw, twilio_server) -> None:
    twilio_server.script(NUMBER, http_status=429, retry_after="3")
    with pytest.raises(RateLimited) as err:
        tw.send(sms())
    assert err.value.retry_after == 3.0 and err.value.provider_status == "20429"


def test_429_with_http_date_and_without_header(tw, twilio_server) -> None:
    when = email.utils.format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60), usegmt=True
    )
    twilio_server.script(NUMBER, http_status=429, retry_after=when)
    with pytest.raises(RateLimited) as err:
        tw.send(sms())
    assert err.value.retry_after is not None and 50 <= err.value.retry_after <= 60
    twilio_server.script(NUMBER, http_status=429)
    with pytest.raises(RateLimited) as err:
        tw.send(sms())
    assert err.value.retry_after is None


def test_server_error_is_transient(tw, twilio_server) -> None:
    twilio_server.script(NUMBER, http_status=500)
    with pytest.raises(Transient) as err:
        tw.send(sms())
    assert not isinstance(err.value, RateLimited) and "500" in str(err.value)


def test_slow_answer_times_out_as_transient(tmp_path, twilio_server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    twilio_server.script(NUMBER, delay=3.0)
    sender = TwilioSms(make_settings(tmp_path, twilio_server, sms_timeout_seconds=0.5))
    started = time.monotonic()
    with pytest.raises(Transient, match="did not answer in time"):
        sender.send(sms())
    assert time.monotonic() - started < 2.0
    assert AUTH_TOKEN not in caplog.text


# -- status polling -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("queued", "sent"),
        ("sending", "sent"),
        ("sent", "sent"),
        ("accepted", "sent"),
        ("scheduled", "sent"),
        ("delivered", "delivered"),
        ("failed", "failed"),
        ("undelivered", "failed"),
        ("canceled", "failed"),
    ],
)
def test_poll_maps_statuses(tw, twilio_server, status, expected) -> None:
    twilio_server.script(NUMBER, statuses=[status])
    sid = tw.send(sms()).provider_ref
    [update] = tw.poll_status([sid])
    assert (update.provider_ref, update.status, update.provider_status) == (sid, expected, status)
    fetch = twilio_server.requests[-1]
    assert (fetch.method, fetch.path) == (
        "GET",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
    )


def test_poll_failure_carries_twilios_error(tw, twilio_server) -> None:
    twilio_server.script(
        NUMBER,
        statuses=["sent", "undelivered"],
        error_code=30003,
        error_message="Unreachable destination handset",
    )
    sid = tw.send(sms()).provider_ref
    assert tw.poll_status([sid])[0].status == "sent"
    [update] = tw.poll_status([sid])
    assert update.status == "failed"
    assert update.error == "Unreachable destination handset (Twilio error 30003)"


def test_poll_failure_without_message_uses_plain_words(tw, twilio_server) -> None:
    twilio_server.script(NUMBER, statuses=["failed"], error_code=30006)
    sid = tw.send(sms()).provider_ref
    assert tw.poll_status([sid])[0].error == "landline or unreachable carrier (Twilio error 30006)"


def test_poll_leaves_out_unknown_sids(tw, twilio_server) -> None:
    sid = tw.send(sms()).provider_ref
    updates = tw.poll_status(["SM" + "f" * 32, sid])
    assert [(u.provider_ref, u.status) for u in updates] == [(sid, "delivered")]


def test_poll_with_wrong_token_is_an_account_problem(tmp_path, twilio_server) -> None:
    sender = TwilioSms(make_settings(tmp_path, twilio_server, twilio_auth_token="bad"))
    with pytest.raises(AccountProblem):
        sender.poll_status(["SM" + "f" * 32])


def test_proxy_setting_routes_requests_through_the_proxy(
    tmp_path,
    twilio_server,
    proxy_server: ProxyStandin,
) -> None:
    sender = TwilioSms(make_settings(tmp_path, twilio_server, http_proxy=proxy_server.url))
    sid = sender.send(sms()).provider_ref
    assert sender.poll_status([sid])[0].status == "delivered"
    targets = [r.target for r in proxy_server.requests]
    base = f"{twilio_server.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages"
    assert targets == [f"{base}.json", f"{base}/{sid}.json"]
    assert len(twilio_server.creates()) == 1
