"""E-mail throughput: SmtpEmail over one kept connection vs yagmail's send() per message.

Both send the same message (subject, text and HTML, no attachment) to a local aiosmtpd
sink that runs in its own process (so the server does not share our GIL) and counts
messages and connections. The baseline is what a naive implementation does: one
``yagmail.SMTP`` object and ``.send()`` per message, which opens a new connection
(EHLO included) for every message. It is given ``prettify_html=False`` so that it does
not also pay for premailer: the difference measured is the connection handling.

Run with ``python -m benchmarks.email [N]`` (not ``python benchmarks/email.py``: the
file name would shadow the standard library's ``email`` package).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import socket
import statistics
import sys
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

FROM = "office@school.example.org"
PASSWORD = "bench-only-password"
SUBJECT = "Weekly attendance report for Zoë"
BODY = (
    "Dear parent or carer,\n\nZoë’s attendance this week was 96.0%. "
    "Thank you for your support.\n\n" + "Attendance matters. " * 20 + "\n\nSt Mary’s School"
)
HTML = "<p>Dear parent or carer,</p><p>Zoë’s attendance this week was <b>96.0%</b>.</p>" + (
    "<p>Attendance matters.</p>" * 20
)


def _sink(
    port: int, cert: str | None, counts: tuple[Synchronized, Synchronized], ready: Any
) -> None:
    """The SMTP sink (runs in a child process until killed); STARTTLS + AUTH if ``cert``."""
    import logging
    import ssl
    import threading

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    messages, connections = counts
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with messages.get_lock():
                messages.value += 1
            return "250 OK"

    class Counting(Controller):
        def factory(self) -> Any:
            with connections.get_lock():
                connections.value += 1
            return super().factory()

    options: dict[str, Any] = {}
    if cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert)
        options = {
            "tls_context": context,
            "require_starttls": True,
            "auth_required": True,
            "authenticator": lambda *args: AuthResult(success=True, auth_data=args[-1]),
        }
    controller = Counting(Handler(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    with connections.get_lock():
        connections.value = 0  # start() probes the server once
    ready.set()
    threading.Event().wait()


def _self_signed(folder: Path) -> Path:
    """A certificate and key for 127.0.0.1 in one PEM file."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    path = folder / "sink.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ours(port: int, n: int, cert: Path | None, tmp: Path) -> float:
    import ssl

    from schoolcomms.settings import Settings
    from senders.base import OutgoingMessage
    from senders.channels.smtp import SmtpEmail

    overrides: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "starttls" if cert else "none",
        "email_from": FROM,
    }
    if cert:
        overrides.update(smtp_user=FROM, smtp_password=PASSWORD)
    settings = Settings(tmp / "data", env={}, overrides=overrides)
    context = ssl.create_default_context(cafile=str(cert)) if cert else None
    messenger = SmtpEmail(settings, ssl_context=context)
    start = time.perf_counter()
    messenger.open()
    for i in range(n):
        message = OutgoingMessage(
            id=i,
            idempotency_key=f"bench:{i}",
            channel="email",
            to=f"parent{i}@home.example.com",
            subject=SUBJECT,
            body=BODY,
            html=HTML,
        )
        messenger.send(message)
    messenger.close()
    return time.perf_counter() - start


def _naive(port: int, n: int, cert: Path | None, tmp: Path) -> float:
    import yagmail

    yag = yagmail.SMTP(
        user={FROM: "Sample School"},
        password=PASSWORD if cert else None,
        host="127.0.0.1",
        port=port,
        smtp_starttls=bool(cert),  # yagmail's STARTTLS does not verify the certificate
        smtp_ssl=False,
        smtp_skip_login=not cert,
        soft_email_validation=False,
    )
    start = time.perf_counter()
    for i in range(n):
        # The plain body is what yagmail would put in the text part anyway.
        yag.send(
            to=f"parent{i}@home.example.com",
            subject=SUBJECT,
            contents=[HTML],
            prettify_html=False,
        )
    yag.close()
    return time.perf_counter() - start


def _compare(n: int, rounds: int, cert: Path | None, tmp: Path) -> dict[str, Any]:
    context = mp.get_context("spawn")
    messages, connections = context.Value("i", 0), context.Value("i", 0)
    ready = context.Event()
    port = _free_port()
    args = (port, str(cert) if cert else None, (messages, connections), ready)
    sink = context.Process(target=_sink, args=args, daemon=True)
    sink.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")
        runs: dict[str, list[dict[str, Any]]] = {"smtp_email": [], "naive_yagmail": []}
        for _ in range(rounds):  # interleaved, so a busy machine hurts both alike
            for label, send in (("smtp_email", _ours), ("naive_yagmail", _naive)):
                messages.value = connections.value = 0
                seconds = send(port, n, cert, tmp)
                deadline = time.monotonic() + 10
                while messages.value < n and time.monotonic() < deadline:
                    time.sleep(0.01)
                runs[label].append(
                    {
                        "seconds": seconds,
                        "received": messages.value,
                        "connections": connections.value,
                    }
                )
        results: dict[str, Any] = {}
        for label, rows in runs.items():
            rates = [n / r["seconds"] for r in rows]
            results[label] = {
                "per_second": round(statistics.median(rates), 1),
                "runs_per_second": [round(r, 1) for r in rates],
                "received": min(r["received"] for r in rows),
                "connections": max(r["connections"] for r in rows),
            }
        ours, naive = results["smtp_email"], results["naive_yagmail"]
        results["ratio"] = round(ours["per_second"] / naive["per_second"], 2)
        return results
    finally:
        sink.kill()
        sink.join()


def run(n: int = 2000, rounds: int = 3) -> dict[str, Any]:
    """Send ``n`` e-mails each way to a local sink; messages/s for each and the ratio.

    Each figure is the median of ``rounds`` interleaved runs of ``n`` messages. The top
    level is the plain sink; ``starttls_auth`` repeats the comparison with STARTTLS and
    AUTH, where each naive connection also pays for a TLS handshake and a login.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result: dict[str, Any] = {"messages": n, "rounds": rounds}
        result.update(_compare(n, rounds, None, folder))
        result["starttls_auth"] = _compare(n, rounds, _self_signed(folder), folder)
        return result


def _line(label: str, row: dict[str, Any]) -> str:
    return (
        f"  {label:<30}{row['per_second']:>9,.1f} msg/s  "
        f"({row['connections']:,} connection(s) a run, {row['received']:,} received; "
        f"runs {row['runs_per_second']})"
    )


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    print(
        f"{result['messages']:,} e-mails to a local aiosmtpd sink in its own process "
        f"(median of {result['rounds']} interleaved runs)"
    )
    for title, block in (("plain", result), ("STARTTLS + AUTH", result["starttls_auth"])):
        print(f"{title}:")
        print(_line("SmtpEmail, one connection", block["smtp_email"]))
        print(_line("yagmail send() per message", block["naive_yagmail"]))
        print(f"  ratio {block['ratio']:.2f}x")
    print(json.dumps(result))
