"""Text Anywhere SMS against a local stand-in that speaks SendSMSEx / SMSStatusEx.

Also covers the shared HTTP helpers (client factory, Retry-After, proxy). Nothing here
talks to a real provider: every URL is a stand-in on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standins import ProxyStandin
from standins.textanywhere import CLIENT_ID, CLIENT_PASS, TextAnywhereStandin

from schoolcomms.settings import Settings
from senders.base import (
    AccountProblem,
    BalanceSource,
    Messenger,
    OptedOut,
    OutgoingMessage,
    RateLimited,
    Rejected,
    SendResult,
    StatusSource,
    Transient,
)
from senders.channels.http import USER_AGENT, make_client, retry_after_seconds
from senders.channels.textanywhere import CODES, TextAnywhereSms

NUMBER = "+447700900123"


@pytest.fixture
def textanywhere_server() -> Iterator[TextAnywhereStandin]:
    """A started stand-in on 127.0.0.1 (see tests/standins/textanywhere.py)."""
    with TextAnywhereStandin() as server:
        yield server


@pytest.fixture
def proxy_server() -> Iterator[ProxyStandin]:
    """A recording forwarding proxy on 127.0.0.1."""
    with ProxyStandin() as server:
        yield server


def sms(message_id: int = 42, to: str = NUMBER, body: str = "Hello from school") -> OutgoingMessage:
    return OutgoingMessage(message_id, f"key-{message_id}", "sms", to, body)


def make_settings(tmp_path: Path, server: TextAnywhereStandin, **overrides: Any) -> Settings:
    values = {
        "textanywhere_url": server.base_url,
        "textanywhere_client_id": CLIENT_ID,
        "textanywhere_client_pass": CLIENT_PASS,
        "sms_sender_id": "MySchool",
        "sms_timeout_seconds": 3.0,
        **overrides,
    }
    return Settings(tmp_path / "data", env={}, overrides=values)


@pytest.fixture
def ta(tmp_path: Path, textanywhere_server: TextAnywhereStandin) -> Iterator[TextAnywhereSms]:
    sender = TextAnywhereSms(make_settings(tmp_path, textanywhere_server))
    sender.open()
    yield sender
    sender.close()


def test_send_posts_exactly_the_documented_fields(ta, textanywhere_server) -> None:
    result = ta.send(sms(42))

    assert result == SendResult("textanywhere", provider_ref="42", provider_status="1")
    [req] = textanywhere_server.requests
    assert (req.method, req.path) == ("POST", "/SendSMSEx.aspx")
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.headers["user-agent"] == USER_AGENT and "schoolcomms" in USER_AGENT
    assert req.form == {
        "Client_ID": CLIENT_ID,
        "Client_Pass": CLIENT_PASS,
        "Client_Ref": "42",
        "Billing_Ref": "schoolcomms",
        "Connection": "2",
        "Originator": "MySchool",
        "OType": "1",
        "DestinationEx": NUMBER,
        "Body": "Hello from school",
        "SMS_Type": "0",
        "Reply_Type": "0",
    }
    assert all(len(v) == 1 for v in req.form_lists.values())  # no field sent twice


def test_numeric_sender_and_connection_setting(tmp_path, textanywhere_server) -> None:
    settings = make_settings(
        tmp_path, textanywhere_server, sms_sender_id="447700900999", textanywhere_connection=1
    )
    TextAnywhereSms(settings).send(sms(7))
    [req] = textanywhere_server.sends()
    assert [req.form[k] for k in ("OType", "Originator", "Connection")] == [
        "0",
        "447700900999",
        "1",
    ]


def test_each_message_arrives_exactly_once_under_its_own_client_ref(
    ta, textanywhere_server
) -> None:
    for message_id in (1, 2, 3):
        assert ta.send(sms(message_id)).provider_ref == str(message_id)
    for ref in ("1", "2", "3"):
        assert len(textanywhere_server.sends(ref)) == 1
    assert len(textanywhere_server.requests) == 3


def test_protocols_are_implemented() -> None:
    sender = TextAnywhereSms(Settings(Path("/nonexistent"), env={}))
    assert isinstance(sender, Messenger) and isinstance(sender, StatusSource)
    assert isinstance(sender, BalanceSource) and sender.balance() is None
    assert (sender.channel, sender.name) == ("sms", "textanywhere")


def test_wrong_password_is_an_account_problem_and_never_shown(
    tmp_path, textanywhere_server, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-Pa55word!"
    sender = TextAnywhereSms(
        make_settings(tmp_path, textanywhere_server, textanywhere_client_pass=wrong)
    )
    with pytest.raises(AccountProblem) as err:
        sender.send(sms())
    assert err.value.provider_status == "2"
    assert "authentication failed" in str(err.value)
    assert wrong not in str(err.value) and wrong not in caplog.text


@pytest.mark.parametrize(
    ("setup", "code", "words"),
    [
        ({"suspended": True}, "22", "account suspended"),
        ({"credit": 0}, "31", "insufficient credits"),
    ],
)
def test_account_states_pause_sending(ta, textanywhere_server, setup, code, words) -> None:
    for name, value in setup.items():
        setattr(textanywhere_server, name, value)
    with pytest.raises(AccountProblem) as err:
        ta.send(sms())
    assert err.value.provider_status == code and words in str(err.value)
    assert isinstance(err.value, OptedOut) == (code == "51")


def test_credit_runs_out_after_the_last_message(ta, textanywhere_server) -> None:
    textanywhere_server.credit = 1
    ta.send(sms(1))
    with pytest.raises(AccountProblem, match="insufficient credits"):
        ta.send(sms(2))


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"textanywhere_connection": 9}, "311"), ({"sms_sender_id": "Far Too Long Name"}, "32")],
)
def test_bad_configuration_is_an_account_problem(
    tmp_path, textanywhere_server, overrides, code
) -> None:
    sender = TextAnywhereSms(make_settings(tmp_path, textanywhere_server, **overrides))
    with pytest.raises(AccountProblem) as err:
        sender.send(sms())
    assert err.value.provider_status == code


def test_missing_credentials_fail_before_any_request(tmp_path, textanywhere_server) -> None:
    sender = TextAnywhereSms(
        make_settings(tmp_path, textanywhere_server, textanywhere_client_pass="")
    )
    with pytest.raises(AccountProblem, match="textanywhere_client_pass"):
        sender.send(sms())
    assert textanywhere_server.requests == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("51", "number in opt-out list"),
        ("46", "invalid or churned number"),
        ("50", "could not be formatted"),
    ],
)
def test_number_refused_at_send_is_rejected(ta, textanywhere_server, code, words) -> None:
    textanywhere_server.script(NUMBER, send_code=code)
    with pytest.raises(Rejected) as err:
        ta.send(sms())
    assert err.value.provider_status == code and words in str(err.value)


@pytest.mark.parametrize("bad", ["07700 900123", "not a number", "+44"])
def test_a_number_that_is_not_e164_is_rejected_without_a_request(
    ta, textanywhere_server, bad
) -> None:
    with pytest.raises(Rejected):
        ta.send(sms(to=bad))
    assert textanywhere_server.requests == []


@pytest.mark.parametrize("code", ["3", "99"])  # "SMS failed", and a code we do not know
def test_sms_failed_and_unknown_codes_are_transient(ta, textanywhere_server, code) -> None:
    textanywhere_server.script(NUMBER, send_code=code)
    with pytest.raises(Transient) as err:
        ta.send(sms())
    assert not isinstance(err.value, RateLimited)
    assert err.value.provider_status == code and code in str(err.value)


@pytest.mark.parametrize(("form", "low", "high"), [("seconds", 7, 7), ("date", 110, 120)])
def test_429_is_rate_limited_with_retry_after(ta, textanywhere_server, form, low, high) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    header = "7" if form == "seconds" else email.utils.format_datetime(when, usegmt=True)
    textanywhere_server.script(NUMBER, http_status=429, retry_after=header)
    with pytest.raises(RateLimited) as err:
        ta.send(sms())
    assert err.value.retry_after is not None and low <= err.value.retry_after <= high


def test_server_error_is_transient_and_the_echoed_password_is_masked(
    ta, textanywhere_server, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    textanywhere_server.script(NUMBER, http_status=500)  # the stand-in echoes the request
    with pytest.raises(Transient) as err:
        ta.send(sms())
    assert not isinstance(err.value, RateLimited)
    assert "500" in str(err.value) and "Client_ID" in str(err.value)  # the echo is shown…
    assert CLIENT_PASS not in str(err.value) and "ta-Pa55" not in str(err.value)  # …masked
    assert CLIENT_PASS not in caplog.text


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, AccountProblem), (403, AccountProblem), (404, AccountProblem), (503, Transient)],
)
def test_http_statuses(ta, textanywhere_server, status, kind) -> None:
    textanywhere_server.script(NUMBER, http_status=status, body="nope")
    with pytest.raises(kind):
        ta.send(sms())


def test_garbled_answer_is_transient(ta, textanywhere_server) -> None:
    textanywhere_server.script(NUMBER, body="<html>maintenance</html>")
    with pytest.raises(Transient, match="cannot read"):
        ta.send(sms())


def test_slow_answer_times_out_as_transient(tmp_path, textanywhere_server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    textanywhere_server.script(NUMBER, delay=3.0)
    sender = TextAnywhereSms(make_settings(tmp_path, textanywhere_server, sms_timeout_seconds=0.5))
    started = time.monotonic()
    with pytest.raises(Transient, match="did not answer in time"):
        sender.send(sms())
    assert time.monotonic() - started < 2.0
    assert len(textanywhere_server.sends("42")) == 1
    assert CLIENT_PASS not in caplog.text


def test_unreachable_gateway_is_transient(tmp_path, textanywhere_server) -> None:
    settings = make_settings(tmp_path, textanywhere_server)
    textanywhere_server.stop()
    with pytest.raises(Transient, match="could not reach"):
        TextAnywhereSms(settings).send(sms())


# -- status polling -----------------------------------------------------------------------
POLL_EXPECTED = {
    "41": "sent", "43": "failed", "45": "delivered", "46": "failed", "47": "sent", "48": "sent",
    "49": "sent", "50": "failed", "51": "failed", "52": "failed", "53": "failed", "54": "sent",
    "55": "failed", "56": "failed", "57": "sent", "58": "sent", "59": "sent", "77": "sent",
}  # fmt: skip


@pytest.mark.parametrize(("code", "expected"), sorted(POLL_EXPECTED.items()))
def test_poll_maps_status_codes(ta, textanywhere_server, code, expected) -> None:
    textanywhere_server.script(NUMBER, statuses=[code])
    ta.send(sms(42))
    [update] = ta.poll_status(["42"])
    assert (update.provider_ref, update.status, update.provider_status) == ("42", expected, code)
    if expected == "failed":
        assert update.error == CODES[code].words
    else:
        assert update.error is None
    [poll] = textanywhere_server.polls()
    assert poll.form == {"Client_ID": CLIENT_ID, "Client_Pass": CLIENT_PASS, "Client_Ref": "42"}


def test_poll_opted_out_number_fails_with_plain_words(ta, textanywhere_server) -> None:
    textanywhere_server.script(NUMBER, statuses=["49", "51"])
    ta.send(sms(5))
    assert [u.status for u in ta.poll_status(["5"])] == ["sent"]
    [update] = ta.poll_status(["5"])
    assert (update.status, update.error) == ("failed", "number in opt-out list")


def test_poll_leaves_out_unknown_refs(ta, textanywhere_server) -> None:
    ta.send(sms(1))
    updates = ta.poll_status(["1", "999"])
    assert [(u.provider_ref, u.status) for u in updates] == [("1", "delivered")]


def test_poll_with_wrong_password_is_an_account_problem(tmp_path, textanywhere_server) -> None:
    sender = TextAnywhereSms(
        make_settings(tmp_path, textanywhere_server, textanywhere_client_pass="x")
    )
    with pytest.raises(AccountProblem):
        sender.poll_status(["1"])


# -- the shared HTTP client ---------------------------------------------------------------
def test_make_client_uses_settings_and_injected_transport(tmp_path) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="+447700900123:1")

    settings = Settings(tmp_path / "data", env={}, overrides={"sms_timeout_seconds": 4.5})
    with make_client(settings, transport=httpx.MockTransport(answer)) as client:
        assert client.timeout.read == 4.5 and client.timeout.connect == 4.5
        client.get("http://127.0.0.1:9/x")
    assert seen[0].headers["User-Agent"] == USER_AGENT


def test_retry_after_forms() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("30", now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:01:30 GMT", now) == 90.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_proxy_setting_routes_requests_through_the_proxy(
    tmp_path,
    textanywhere_server,
    proxy_server: ProxyStandin,
) -> None:
    settings = make_settings(tmp_path, textanywhere_server, http_proxy=proxy_server.url)
    assert TextAnywhereSms(settings).send(sms(11)).provider_ref == "11"
    [via] = proxy_server.requests
    assert via.target == textanywhere_server.base_url + "SendSMSEx.aspx"  # absolute form
    assert len(textanywhere_server.sends("11")) == 1


def test_blank_proxy_setting_ignores_proxy_environment(
    tmp_path,
    textanywhere_server,
    proxy_server: ProxyStandin,
    monkeypatch,
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy_server.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    TextAnywhereSms(make_settings(tmp_path, textanywhere_server)).send(sms(12))
    assert proxy_server.requests == []
    assert len(textanywhere_server.sends("12")) == 1
