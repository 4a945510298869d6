"""A stand-in for Twilio's Messages API (create and fetch), per PROVIDERS.md §5.2.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form-encoded, HTTP Basic auth) answers
201 with a Message resource like the OpenAPI examples in
``/work/shared/fixtures/providers/twilio/``; ``GET …/Messages/{sid}.json`` answers the
resource with the number's scripted status. Errors are Twilio's JSON
``{code, message, more_info, status}``: 401/20003 for bad credentials or a suspended
account, 400/2160x for missing parameters, 400/21211 for a To that is not E.164, 404/20404
for an unknown message.

Script a number with :meth:`TwilioStandin.script`: ``error=21610`` (any 4xx code, see
:data:`ERRORS`), ``http_status=429, retry_after="3"``, ``http_status=500``, ``delay=2``,
or ``statuses=["sent", "delivered"]`` (successive fetch answers; the last one repeats),
with ``error_code``/``error_message`` for a failed message.
"""

from __future__ import annotations

import base64
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from . import Recorded, Reply, StandinServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-T0ken/secret+value"
API = "/2010-04-01/Accounts/"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Error code → (HTTP status, Twilio's message).
ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "The 'To' number is not a valid mobile number."),
}


def error(code: int, message: str | None = None, **headers: str) -> Reply:
    """Twilio's JSON error answer for ``code``."""
    status, default = ERRORS.get(code, (400, "Error"))
    body = {
        "code": code,
        "message": message or default,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply.json(status, body, **headers)


@dataclass
class NumberScript:
    """How the stand-in treats one destination number."""

    error: int | None = None
    http_status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    statuses: list[str] = field(default_factory=lambda: ["delivered"])
    error_code: int | None = None
    error_message: str | None = None


class TwilioStandin(StandinServer):
    """Twilio's Messages API on 127.0.0.1, scripted per number."""

    def __init__(self) -> None:
        super().__init__()
        self.account_sid = ACCOUNT_SID
        self.auth_token = AUTH_TOKEN
        self.suspended = False
        self.scripts: dict[str, NumberScript] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self._polls: dict[str, int] = {}
        self._sids = itertools.count(1)

    def script(self, number: str, **how: Any) -> NumberScript:
        """Script how ``number`` is treated (fields of :class:`NumberScript`)."""
        self.scripts[number] = NumberScript(**how)
        return self.scripts[number]

    def creates(self) -> list[Recorded]:
        """Every create-message request received."""
        return [
            r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")
        ]

    # -- protocol ---------------------------------------------------------------------
    def handle(self, rec: Recorded) -> Reply:
        """Answer one request as Twilio's API would."""
        if not rec.path.startswith(API + self.account_sid + "/"):
            return error(20404)
        if not self._authorised(rec):
            return error(20003)
        if self.suspended:
            return error(20003, "Your account is suspended.")
        rest = rec.path[len(API + self.account_sid) :]
        if rest == "/Messages.json" and rec.method == "POST":
            return self._create(rec)
        match = re.fullmatch(r"/Messages/((?:SM|MM)[0-9a-f]{32})\.json", rest)
        if match and rec.method == "GET":
            return self._fetch(match.group(1))
        return error(20404)

    def _authorised(self, rec: Recorded) -> bool:
        scheme, _, value = rec.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except ValueError:
            return False
        return (user, password) == (self.account_sid, self.auth_token)

    def _special(self, script: NumberScript | None) -> Reply | None:
        if script is None:
            return None
        reply = None
        if script.http_status is not None:
            code = {429: 20429, 500: 20500}.get(script.http_status, script.error or 20500)
            reply = error(code)
            reply.status = script.http_status
        elif script.error is not None:
            reply = error(script.error)
        if reply is not None:
            if script.retry_after:
                reply.headers["Retry-After"] = script.retry_after
            reply.delay = script.delay
        return reply

    def _create(self, rec: Recorded) -> Reply:
        if "form-urlencoded" not in rec.headers.get("content-type", ""):
            return error(21604)
        form = rec.form
        to = form.get("To", "")
        script = self.scripts.get(to)
        special = self._special(script)
        if special is not None:
            return special
        if not to:
            return error(21604)
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return error(21603)
        if not form.get("Body"):
            return error(21602)
        if not E164.match(to):
            return error(21211)
        sid = f"SM{next(self._sids):032x}"
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
            "date_sent": None,
            "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "0" if form.get("MessagingServiceSid") else "1",
            "price": None,
            "price_unit": None,
            "sid": sid,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "subresource_uris": {"media": f"{API}{self.account_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"{API}{self.account_sid}/Messages/{sid}.json",
        }
        self.messages[sid] = resource
        reply = Reply.json(201, resource)
        reply.delay = script.delay if script else 0.0
        return reply

    def _fetch(self, sid: str) -> Reply:
        resource = self.messages.get(sid)
        if resource is None:
            return error(20404)
        script = self.scripts.get(resource["to"]) or NumberScript()
        polls = self._polls.get(sid, 0)
        self._polls[sid] = polls + 1
        status = script.statuses[min(polls, len(script.statuses) - 1)]
        failed = status in {"failed", "undelivered"}
        resource = {
            **resource,
            "status": status,
            "error_code": script.error_code if failed else None,
            "error_message": script.error_message if failed else None,
        }
        return Reply.json(200, resource)
