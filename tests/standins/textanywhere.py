"""A stand-in for Text Anywhere's legacy HTTP service (``SendSMSEx`` and ``SMSStatusEx``).

Speaks the protocol in PROVIDERS.md §5.1(a): form-encoded POSTs, answers in plain text as
a CSV of ``destination:code``. It checks ``Client_ID``/``Client_Pass`` (code 2), the
account state (22 suspended, 31 no credit), ``Connection`` (311) and ``Originator`` (32),
remembers each accepted message by ``Client_Ref`` and answers ``SMSStatusEx`` from the
number's script (a ``Client_Ref`` it never accepted gets a bare ``40``).

Script a number with :meth:`TextAnywhereStandin.script`, e.g. ``send_code="51"`` (opted
out), ``http_status=429, retry_after="7"``, ``http_status=500``, ``delay=2`` (slow), or
``statuses=["49", "45"]`` (successive poll answers; the last one repeats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import Recorded, Reply, StandinServer

CLIENT_ID = "school-account"
CLIENT_PASS = "ta-Pa55 w0rd&secret"  # a space and & check the form encoding too
SEND_PAGE = "/SendSMSEx.aspx"
STATUS_PAGE = "/SMSStatusEx.aspx"
DESTINATION = re.compile(r"^(\+\d{7,15}|0\d{9,10})$")
ALPHANUMERIC = re.compile(r"^[A-Za-z0-9 ]{1,11}$")
NUMERIC = re.compile(r"^\+?\d{1,16}$")


@dataclass
class NumberScript:
    """How the stand-in treats one destination number."""

    send_code: str = "1"
    statuses: list[str] = field(default_factory=lambda: ["45"])
    http_status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    body: str | None = None  # a raw answer instead of the protocol's


@dataclass
class Accepted:
    """A message the stand-in accepted (code 1)."""

    client_ref: str
    destination: str
    form: dict[str, str]
    polls: int = 0


class TextAnywhereStandin(StandinServer):
    """Text Anywhere's ``SendSMSEx``/``SMSStatusEx`` on 127.0.0.1, scripted per number."""

    def __init__(self) -> None:
        super().__init__()
        self.client_id = CLIENT_ID
        self.client_pass = CLIENT_PASS
        self.suspended = False
        self.credit: int | None = None  # None: unlimited; each accepted SMS costs 1
        self.scripts: dict[str, NumberScript] = {}
        self.accepted: dict[str, Accepted] = {}

    @property
    def base_url(self) -> str:
        """What ``textanywhere_url`` should be set to (with the trailing slash)."""
        return self.url + "/"

    def script(self, number: str, **how: object) -> NumberScript:
        """Script how ``number`` is treated (fields of :class:`NumberScript`)."""
        self.scripts[number] = NumberScript(**how)  # type: ignore[arg-type]
        return self.scripts[number]

    def sends(self, client_ref: str | None = None) -> list[Recorded]:
        """Every ``SendSMSEx`` request received (for one ``Client_Ref`` if given)."""
        return [
            r
            for r in self.requests
            if r.path == SEND_PAGE
            and (client_ref is None or r.form.get("Client_Ref") == client_ref)
        ]

    def polls(self) -> list[Recorded]:
        """Every ``SMSStatusEx`` request received."""
        return [r for r in self.requests if r.path == STATUS_PAGE]

    # -- protocol ---------------------------------------------------------------------
    def handle(self, rec: Recorded) -> Reply:
        """Answer one request as Text Anywhere's HTTP service would."""
        if rec.method != "POST":
            return Reply.text("Method not allowed", 405)
        if rec.path == SEND_PAGE:
            return self._send(rec.form)
        if rec.path == STATUS_PAGE:
            return self._status(rec.form)
        return Reply.text("Not found", 404)

    def _special(self, script: NumberScript | None, form: dict[str, str]) -> Reply | None:
        """An HTTP error or raw answer scripted for the number, if any.

        A scripted error without a body echoes the request back, as some gateways do, so
        tests can check that nothing from an error page leaks our password.
        """
        if script is None or (script.http_status is None and script.body is None):
            return None
        body = script.body if script.body is not None else f"Error while handling {form}"
        reply = Reply.text(body, script.http_status or 200)
        if script.retry_after:
            reply.headers["Retry-After"] = script.retry_after
        reply.delay = script.delay
        return reply

    def _send(self, form: dict[str, str]) -> Reply:
        destination = form.get("DestinationEx", "")
        script = self.scripts.get(destination)
        special = self._special(script, form)
        if special is not None:
            return special
        code = self._send_code(form, destination, script)
        if code == "1":
            ref = form["Client_Ref"]
            self.accepted[ref] = Accepted(ref, destination, dict(form))
            if self.credit is not None:
                self.credit -= 1
        reply = Reply.text(f"{destination}:{code}")
        reply.delay = script.delay if script else 0.0
        return reply

    def _send_code(
        self, form: dict[str, str], destination: str, script: NumberScript | None
    ) -> str:
        if (form.get("Client_ID"), form.get("Client_Pass")) != (self.client_id, self.client_pass):
            return "2"
        if self.suspended:
            return "22"
        if form.get("Connection") not in {"1", "2", "4"}:
            return "311"
        originator, otype = form.get("Originator", ""), form.get("OType")
        pattern = ALPHANUMERIC if otype == "1" else NUMERIC
        if otype not in {"0", "1"} or not pattern.match(originator):
            return "32"
        ref, body = form.get("Client_Ref", ""), form.get("Body", "")
        if not ref or len(ref) > 50 or not body or not DESTINATION.match(destination):
            return "4"
        if self.credit is not None and self.credit <= 0:
            return "31"
        return script.send_code if script else "1"

    def _status(self, form: dict[str, str]) -> Reply:
        if (form.get("Client_ID"), form.get("Client_Pass")) != (self.client_id, self.client_pass):
            return Reply.text("2")
        if self.suspended:
            return Reply.text("22")
        accepted = self.accepted.get(form.get("Client_Ref", ""))
        if accepted is None:
            return Reply.text("40")
        script = self.scripts.get(accepted.destination)
        special = self._special(script, form)
        if special is not None:
            return special
        statuses = script.statuses if script else ["45"]
        code = statuses[min(accepted.polls, len(statuses) - 1)]
        accepted.polls += 1
        return Reply.text(f"{accepted.destination}:{code}")
