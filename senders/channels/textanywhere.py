"""Text Anywhere SMS over the legacy HTTP service (``SendSMSEx`` / ``SMSStatusEx``).

One message per request, form-encoded POSTs to ``{textanywhere_url}SendSMSEx.aspx`` and
``{textanywhere_url}SMSStatusEx.aspx``. Our ops-store message id is sent as
``Client_Ref``, so the provider's records (and a status poll) can tell whether a message
sent just before a crash really went; the same ``Client_Ref`` is the ``provider_ref``.
Before any attempt after the first (the one before may have been accepted without its
answer being recorded: a dispatcher killed mid-request, a timeout, the ops store locked)
``SMSStatusEx`` is asked first, and a message Text Anywhere already has is not sent again.

The answer to both calls is a CSV of ``destination:code``; :data:`CODES` says what each
code means when sending and when polling. The password (``Client_Pass``) travels only
in request bodies, never in a URL, exception message or log line.
"""

from __future__ import annotations

import logging
import re
from typing import Literal, NamedTuple

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

PROVIDER = "Text Anywhere"
SendOutcome = Literal["sent", "rejected", "account", "transient"]
PollOutcome = Literal["sent", "delivered", "failed", "account", "skip"]


class Code(NamedTuple):
    """One Text Anywhere result code: its words, and what it means on send and on poll."""

    words: str
    on_send: SendOutcome | None  # None: not expected from SendSMSEx (treated as unknown)
    on_poll: PollOutcome | None  # None: not expected from SMSStatusEx (treated as unknown)


# The whole code table, in PROVIDERS.md's words. SendSMSEx documents 1, 2, 22, 3, 31, 311
# and 32 (the rest of its list is lost); SMSStatusEx documents 2, 22, 4 and 40–59. Where a
# number-specific SMSStatusEx code (4, 46, 50, 51) comes back from SendSMSEx we assume it
# means the same and reject the message. Unknown codes are Transient on send and leave
# the message "sent" on poll.
OPTED_OUT_CODE = "51"
UNKNOWN_REF_CODE = "40"
CODES: dict[str, Code] = {
    "1": Code("SMS sent", "sent", None),
    "2": Code("authentication failed (account not found)", "account", "account"),
    "22": Code("account suspended", "account", "account"),
    "3": Code("SMS failed", "transient", None),
    "31": Code("insufficient credits", "account", None),
    "311": Code("connection does not exist", "account", None),
    "32": Code("originator format not recognised", "account", None),
    "4": Code("parameters too long or empty", "rejected", "skip"),
    UNKNOWN_REF_CODE: Code("Client_Ref unknown", None, "skip"),
    "41": Code("processing", None, "sent"),
    "43": Code("rejected by sending network", None, "failed"),
    "45": Code("delivered to handset", None, "delivered"),
    "46": Code("invalid or churned number", "rejected", "failed"),
    "47": Code("in transit, retrying", None, "sent"),
    "48": Code("delivered to network, no report (likely expired)", None, "sent"),
    "49": Code("queued", None, "sent"),
    "50": Code("number could not be formatted", "rejected", "failed"),
    OPTED_OUT_CODE: Code("number in opt-out list", "rejected", "failed"),
    "52": Code("expired", None, "failed"),
    "53": Code("not delivered (unknown reason)", None, "failed"),
    "54": Code("status unknown", None, "sent"),
    "55": Code("rejected by delivering network", None, "failed"),
    "56": Code("handset has insufficient credit", None, "failed"),
    "57": Code("temporary problem locating the handset", None, "sent"),
    "58": Code("operator problem", None, "sent"),
    "59": Code("handset problem (temporary)", None, "sent"),
}

_NUMERIC_SENDER = re.compile(r"^\+?\d+$")


def parse_codes(text: str) -> list[tuple[str, str]]:
    """``"+447…:1,+447…:45"`` → ``[("+447…", "1"), ("+447…", "45")]``.

    A bare code (no ``destination:``) gives ``("", code)``, so an answer for the whole
    request is read too.
    """
    entries = []
    for item in text.strip().split(","):
        item = item.strip()
        if not item:
            continue
        destination, _, code = item.rpartition(":")
        entries.append((destination.strip(), code.strip()))
    return entries


def _code_for(entries: list[tuple[str, str]], destination: str | None) -> str:
    """The code for ``destination`` (or the only one there is)."""
    if destination:
        wanted = destination.lstrip("+")
        for dest, code in entries:
            if dest.lstrip("+") == wanted:
                return code
    return entries[0][1]


class TextAnywhereSms:
    """Messenger, StatusSource and BalanceSource for Text Anywhere's legacy HTTP service."""

    channel: Channel = "sms"
    name = "textanywhere"

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._client = client
        self._owns_client = client is None
        base = str(settings.textanywhere_url)
        self.base_url = base if base.endswith("/") else base + "/"

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
        """Send one SMS with ``SendSMSEx``; ``Client_Ref`` is ``str(message.id)``.

        On a later attempt, a message Text Anywhere already knows is not sent again.
        """
        self._check_config()
        destination = check_e164(message.to, PROVIDER)
        sender = str(self.settings.sms_sender_id)
        client_ref = str(message.id)
        if message.attempt > 1:
            earlier = self._accepted_before(client_ref)
            if earlier is not None:
                return earlier
        form = {
            **self._credentials(),
            "Client_Ref": client_ref,
            "Billing_Ref": "schoolcomms",
            "Connection": str(self.settings.textanywhere_connection),
            "Originator": sender,
            "OType": "0" if _NUMERIC_SENDER.match(sender) else "1",
            "DestinationEx": destination,
            "Body": message.body,
            "SMS_Type": "0",
            "Reply_Type": "0",
        }
        text = self._post("SendSMSEx.aspx", form)
        code = _code_for(self._entries(text), destination)
        known = CODES.get(code)
        words = known.words if known else "unknown result code"
        outcome = known.on_send if known else None
        log.info("Text Anywhere SendSMSEx for message %s: code %s (%s)", client_ref, code, words)
        what = f"Text Anywhere answered code {code} ({words})"
        if outcome == "sent":
            return SendResult(self.name, provider_ref=client_ref, provider_status=code)
        if outcome == "rejected":
            raise (OptedOut if code == OPTED_OUT_CODE else Rejected)(what, code)
        if outcome == "account":
            raise AccountProblem(f"{what}; sending is paused until the account is fixed", code)
        raise Transient(f"{what}; will retry", code)

    def _accepted_before(self, client_ref: str) -> SendResult | None:
        """What became of an earlier attempt, if Text Anywhere accepted one; else None.

        A ``Client_Ref`` it does not know (code 40) was never accepted, so it is sent.
        If the question cannot be answered the error is raised (Transient: try later),
        rather than risk texting a parent twice.
        """
        text = self._post("SMSStatusEx.aspx", {**self._credentials(), "Client_Ref": client_ref})
        code = _code_for(self._entries(text), None)
        if code == UNKNOWN_REF_CODE:
            log.info("Text Anywhere never accepted message %s; sending it", client_ref)
            return None
        update = self._status_update(client_ref, code)
        if update is None:
            return None
        log.warning(
            "Text Anywhere already has message %s (code %s) from an earlier attempt; "
            "not sending it again",
            client_ref,
            update.provider_status,
        )
        # A failed status is recorded as sent; the delivery poll then records the failure.
        status = "delivered" if update.status == "delivered" else "sent"
        return SendResult(self.name, client_ref, update.provider_status, status)

    # -- StatusSource ---------------------------------------------------------------
    def poll_status(self, provider_refs: list[str]) -> list[StatusUpdate]:
        """Ask ``SMSStatusEx`` about each Client_Ref; refs it does not know are left out."""
        self._check_config()
        updates = []
        for ref in provider_refs:
            text = self._post("SMSStatusEx.aspx", {**self._credentials(), "Client_Ref": ref})
            code = _code_for(self._entries(text), None)
            update = self._status_update(ref, code)
            if update is not None:
                updates.append(update)
        return updates

    # -- BalanceSource --------------------------------------------------------------
    def balance(self) -> float | None:
        """Credit left: not offered by the legacy HTTP service, so always ``None``."""
        return None

    # -- internals ------------------------------------------------------------------
    def _status_update(self, ref: str, code: str) -> StatusUpdate | None:
        known = CODES.get(code)
        outcome = known.on_poll if known else None
        words = known.words if known else "unknown status code"
        log.info("Text Anywhere SMSStatusEx for %s: code %s (%s)", ref, code, words)
        if outcome == "account":
            raise AccountProblem(f"Text Anywhere answered code {code} ({words})", code)
        if outcome == "skip":
            log.warning("Text Anywhere has no status for %s: code %s (%s)", ref, code, words)
            return None
        if outcome == "delivered":
            return StatusUpdate(ref, "delivered", code)
        if outcome == "failed":
            return StatusUpdate(ref, "failed", code, error=words)
        return StatusUpdate(ref, "sent", code)

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = make_client(self.settings)
            self._owns_client = True
        return self._client

    def _secrets(self) -> list[str]:
        return [str(self.settings.textanywhere_client_pass)]

    def _credentials(self) -> dict[str, str]:
        return {
            "Client_ID": str(self.settings.textanywhere_client_id),
            "Client_Pass": str(self.settings.textanywhere_client_pass),
        }

    def _check_config(self) -> None:
        missing = [
            name
            for name in ("textanywhere_client_id", "textanywhere_client_pass")
            if not self.settings[name]
        ]
        if missing:
            raise AccountProblem(f"Text Anywhere is not configured: set {', '.join(missing)}")

    def _post(self, page: str, form: dict[str, str]) -> str:
        """POST ``form`` to ``page``; the body text of a 2xx answer, or a ProviderError."""
        response = request(self._http(), "POST", self.base_url + page, provider=PROVIDER, data=form)
        snippet = body_snippet(response, self._secrets())
        classify_http(response, provider=PROVIDER, detail=snippet)
        if 400 <= response.status_code < 500:  # our request is wrong for every message
            raise AccountProblem(
                f"Text Anywhere answered HTTP {response.status_code} to {page}: {snippet}; "
                "check textanywhere_url",
                str(response.status_code),
            )
        if not response.is_success:
            raise Transient(
                f"Text Anywhere answered HTTP {response.status_code} to {page}: {snippet}",
                str(response.status_code),
            )
        return response.text

    def _entries(self, text: str) -> list[tuple[str, str]]:
        entries = parse_codes(text)
        if not entries or not all(code.isdigit() for _, code in entries):
            shown = redact(" ".join(text.split()), self._secrets())[:200] or "(empty)"
            raise Transient(f"Text Anywhere gave an answer we cannot read: {shown}")
        return entries
