"""Twilio SMS over the Messages API (``/2010-04-01/Accounts/{sid}/Messages.json``).

Sending is a form-encoded POST with HTTP Basic auth (account SID : auth token); Twilio's
message ``sid`` becomes our ``provider_ref`` and its ``status`` our ``provider_status``.
Errors come back as JSON ``{code, message, more_info, status}``; :data:`REJECTED_CODES`
and :data:`ACCOUNT_CODES` say which codes reject one message and which stop the account.
Polling GETs ``/Messages/{sid}.json`` and maps the status with :data:`STATUS_MAP`.

Twilio's documented create request has no client reference, so unlike Text Anywhere a
message sent just before a crash cannot be recognised when it is retried.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx

from schoolcomms.settings import Settings
from senders.base import (
    AccountProblem,
    Channel,
    OptedOut,
    OutgoingMessage,
    Rejected,
    SendResult,
    StatusUpdate,
    Transient,
)
from senders.channels.http import (
    body_snippet,
    check_e164,
    classify_http,
    make_client,
    redact,
    request,
)

log = logging.getLogger(__name__)

PROVIDER = "Twilio"
API_VERSION = "2010-04-01"

# 4xx error codes that mean "this message, to this number, can never go".
UNSUBSCRIBED = 21610  # the recipient replied STOP
REJECTED_CODES: dict[int, str] = {
    21211: "invalid 'To' phone number",
    21408: "sending to this region is not enabled",
    21610: "the recipient has unsubscribed (replied STOP)",
    21612: "the 'To' number cannot be reached by SMS",
    21614: "the 'To' number is not a mobile number",
}
# Error codes that mean every message will fail until someone fixes the account settings.
ACCOUNT_CODES: dict[int, str] = {
    20003: "authentication failed",
    20404: "account or resource not found",
    21212: "invalid 'From' number",
    21606: "the 'From' number cannot send messages",
}
# Twilio status → our status. Anything not listed counts as still "sent".
STATUS_MAP: dict[str, Literal["sent", "delivered", "failed"]] = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "partially_delivered": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
}
# Plain-English fallbacks when a failed message has an error_code but no error_message.
DELIVERY_ERRORS: dict[int, str] = {
    30003: "unreachable destination handset",
    30004: "message blocked",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "message filtered by the carrier",
    30008: "unknown delivery error",
}


def _error_of(response: httpx.Response) -> tuple[int | None, str]:
    """Twilio's ``(code, message)`` from an error answer (``(None, "")`` if not JSON)."""
    try:
        data = response.json()
    except ValueError:
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    code = data.get("code")
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    return code, str(data.get("message") or "")


class TwilioSms:
    """Messenger and StatusSource for Twilio's Messages API."""

    channel: Channel = "sms"
    name = "twilio"

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._client = client
        self._owns_client = client is None
        self.account_sid = str(settings.twilio_account_sid)
        base = str(settings.twilio_url).rstrip("/")
        self.messages_url = f"{base}/{API_VERSION}/Accounts/{self.account_sid}/Messages"

    # -- Messenger ------------------------------------------------------------------
    def open(self) -> None:
        """Create the HTTP client (if none was given) for a dispatch run."""
        self._http()

    def close(self) -> None:
        """Close the HTTP client if this messenger created it."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    def send(self, message: OutgoingMessage) -> SendResult:
        """Create one Message; ``From`` is the Messaging Service when one is set."""
        self._check_config()
        form = {"To": check_e164(message.to, PROVIDER), "Body": message.body}
        service = str(self.settings.twilio_messaging_service_sid)
        if service:
            form["MessagingServiceSid"] = service
        else:
            form["From"] = str(self.settings.twilio_from)
        response = self._call("POST", self.messages_url + ".json", data=form)
        if not response.is_success:
            self._raise_for_error(response)
        data = self._json(response)
        sid, status = str(data.get("sid") or ""), str(data.get("status") or "")
        log.info("Twilio accepted message %s as %s (%s)", message.id, sid, status)
        if not sid:
            raise Transient("Twilio accepted the request but gave no message sid", status)
        if STATUS_MAP.get(status) == "failed":
            raise Rejected(f"Twilio failed the message at once: {self._failure(data)}", status)
        return SendResult(self.name, provider_ref=sid, provider_status=status)

    # -- StatusSource ---------------------------------------------------------------
    def poll_status(self, provider_refs: list[str]) -> list[StatusUpdate]:
        """Fetch each Message by sid; sids Twilio does not know (404) are left out."""
        self._check_config()
        updates = []
        for sid in provider_refs:
            response = self._call("GET", f"{self.messages_url}/{sid}.json")
            if response.status_code == 404:
                log.warning("Twilio does not know message %s", sid)
                continue
            if not response.is_success:
                self._raise_for_error(response)
            data = self._json(response)
            status = str(data.get("status") or "")
            ours = STATUS_MAP.get(status, "sent")
            error = self._failure(data) if ours == "failed" else None
            updates.append(StatusUpdate(sid, ours, status, error=error))
        return updates

    # -- internals ------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = make_client(self.settings)
            self._owns_client = True
        return self._client

    def _secrets(self) -> list[str]:
        return [str(self.settings.twilio_auth_token)]

    def _check_config(self) -> None:
        missing = [n for n in ("twilio_account_sid", "twilio_auth_token") if not self.settings[n]]
        if not (self.settings.twilio_from or self.settings.twilio_messaging_service_sid):
            missing.append("twilio_from or twilio_messaging_service_sid")
        if missing:
            raise AccountProblem(f"Twilio is not configured: set {', '.join(missing)}")

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        auth = (self.account_sid, str(self.settings.twilio_auth_token))
        return request(self._http(), method, url, provider=PROVIDER, auth=auth, **kwargs)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise Transient(
                f"Twilio gave an answer we cannot read: {body_snippet(response, self._secrets())}"
            )
        return data

    def _failure(self, data: dict[str, Any]) -> str:
        code = data.get("error_code")
        text = str(data.get("error_message") or "")
        if not text:
            try:
                text = DELIVERY_ERRORS.get(int(code), "") if code is not None else ""
            except (TypeError, ValueError):
                text = ""
        text = redact(text, self._secrets()) or "no reason given"
        return f"{text} (Twilio error {code})" if code is not None else text

    def _raise_for_error(self, response: httpx.Response) -> None:
        """Raise the ProviderError for a non-2xx answer, with Twilio's own explanation."""
        code, text = _error_of(response)
        text = redact(text, self._secrets()) or body_snippet(response, self._secrets())
        status = str(code) if code is not None else str(response.status_code)
        detail = f"{text} (Twilio error {code})" if code is not None else text
        if code in ACCOUNT_CODES:
            raise AccountProblem(
                f"Twilio: {ACCOUNT_CODES[code]}: {detail}; sending is paused until the "
                "account settings are fixed",
                status,
            )
        if code in REJECTED_CODES:
            kind = OptedOut if code == UNSUBSCRIBED else Rejected
            raise kind(f"Twilio: {REJECTED_CODES[code]}: {detail}", status)
        classify_http(response, provider=PROVIDER, detail=detail, provider_status=status)
        if response.status_code == 404:
            raise AccountProblem(f"Twilio: not found: {detail}; check twilio_url", status)
        if 400 <= response.status_code < 500:  # a request Twilio will never accept as is
            raise Rejected(f"Twilio refused the message: {detail}", status)
        raise Transient(f"Twilio answered HTTP {response.status_code}: {detail}", status)
