"""The files in deploy/ agree with the code: units parse and run real commands, the
environment example names real settings, the proxies pass Streamlit's WebSocket.

(Checked by hand as well: `systemd-analyze verify` on both units, `nginx -t` and
`caddy validate` on the proxy configs, and a WebSocket handshake through each proxy
with TLS to a running dashboard; docs/operations.md says how.)
"""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest

from schoolcomms.cli import REFUSED, main
from schoolcomms.settings import DATA_DIR_ENV, REGISTRY, Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
SERVICES = ["schoolcomms-dashboard.service", "schoolcomms-scheduler.service"]
UNITS = [*SERVICES, "schoolcomms-backup.service", "schoolcomms-backup.timer"]
HOST = "schoolcomms.example-academy.sch.uk"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as {section: {key: [values, in order]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in (DEPLOY / name).read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{name}: {line!r} is outside any section"
        key, sep, value = line.partition("=")
        assert sep, f"{name}: {line!r} is not key=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(sections: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = sections[section][key]
    assert len(values) == 1, f"{key} appears {len(values)} times"
    return values[0]


def parses_as_cli(argv: list[str]) -> click.Context:
    """Parse ``schoolcomms ARGV`` with the real click commands (nothing runs)."""
    ctx = main.make_context("schoolcomms", ["--data-dir", "/tmp/x", *argv[:1]])
    command = main.commands[argv[0]]
    return command.make_context(argv[0], list(argv[1:]), parent=ctx)


@pytest.mark.parametrize("name", UNITS)
def test_units_parse_configparser_style(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / name).read_text())
    sections = unit(name)
    assert set(parser.sections()) == set(sections)
    assert "Description" in sections["Unit"]
    assert "operations.md" in one(sections, "Unit", "Documentation")


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_as_a_dedicated_hardened_user(name):
    service = unit(name)["Service"]
    assert service["User"] == ["schoolcomms"] and service["Group"] == ["schoolcomms"]
    assert service["WorkingDirectory"] == ["/etc/schoolcomms"]
    assert service["EnvironmentFile"] == ["/etc/schoolcomms/schoolcomms.env"]
    assert service["Restart"] == ["on-failure"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["ReadWritePaths"] == ["/var/lib/schoolcomms"]
    assert service["StateDirectory"] == ["schoolcomms"]
    assert service["CapabilityBoundingSet"] == [""]
    assert "MemoryDenyWriteExecute" not in service  # vl-convert's JavaScript engine needs it
    assert unit(name)["Install"]["WantedBy"] == ["multi-user.target"]
    # The data directory named in the environment example is inside ReadWritePaths.
    assert env_example()[DATA_DIR_ENV].startswith("/var/lib/schoolcomms/")


def exec_argv(name: str) -> list[str]:
    argv = shlex.split(one(unit(name), "Service", "ExecStart"))
    assert argv[0] == "/opt/schoolcomms/.venv/bin/schoolcomms"
    return argv[1:]


def test_the_dashboard_unit_starts_the_dashboard_on_the_proxied_port():
    argv = exec_argv("schoolcomms-dashboard.service")
    assert argv[0] == "dashboard"
    ctx = parses_as_cli(argv)
    assert ctx.params["port"] == 8501
    assert "127.0.0.1:8501" in nginx_text()
    assert "reverse_proxy 127.0.0.1:8501" in (DEPLOY / "caddy" / "Caddyfile").read_text()
    assert env_example()["STREAMLIT_SERVER_ADDRESS"] == "127.0.0.1"


def test_the_scheduler_unit_stops_it_with_sigterm_and_does_not_loop_on_refusal():
    argv = exec_argv("schoolcomms-scheduler.service")
    assert argv[0] == "scheduler"
    assert parses_as_cli(argv).params["log_format"] == "json"
    service = unit("schoolcomms-scheduler.service")["Service"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert int(service["TimeoutStopSec"][0]) >= 60  # running jobs finish first
    # "Another scheduler is running" and bad settings exit with the CLI's refusal code.
    assert service["RestartPreventExitStatus"] == [str(REFUSED)]
    import inspect

    from scheduler import loop

    assert "signal.SIGTERM" in inspect.getsource(loop.install_signal_handlers)


def test_the_backup_unit_and_timer():
    service = unit("schoolcomms-backup.service")["Service"]
    assert service["Type"] == ["oneshot"] and service["User"] == ["schoolcomms"]
    assert "/var/backups/schoolcomms" in service["ReadWritePaths"][0].split()
    shell = shlex.split(service["ExecStart"][0])
    assert shell[:2] == ["/bin/sh", "-c"]
    # $$ and %% are systemd's escapes for $ and %; the shell sees one of each.
    script = shell[2].replace("$$", "$").replace("%%", "%")
    commands = [shlex.split(part) for part in script.split("&&")]
    assert [c[0] for c in commands[1:]] == ["/opt/schoolcomms/.venv/bin/schoolcomms"] * 2
    backup, verify = (c[1:] for c in commands[1:])
    assert parses_as_cli(backup).params["dest"]
    assert parses_as_cli(verify).params["verify_only"] is True
    assert "date +%Y%m%d-%H%M" in script
    timer = unit("schoolcomms-backup.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


def env_example() -> dict[str, str]:
    values = {}
    for raw in (DEPLOY / "schoolcomms.env.example").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


def test_the_environment_example_names_only_real_settings():
    from streamlit import config

    text = (DEPLOY / "schoolcomms.env.example").read_text()
    named = set(re.findall(r"^#?((?:SCHOOLCOMMS|STREAMLIT)_[A-Z0-9_]+)=", text, re.M))
    ours = {s.env_var for s in REGISTRY.values()} | {DATA_DIR_ENV}
    config.get_config_options()
    streamlit = {option.env_var for option in config._config_options.values()}
    unknown = {n for n in named if n not in ours and n not in streamlit}
    assert not unknown, f"not a setting: {sorted(unknown)}"
    assert {"SCHOOLCOMMS_SMTP_PASSWORD", "SCHOOLCOMMS_OPS_URL"} <= named
    # The values given load without a settings error.
    env = {k: v for k, v in env_example().items() if k.startswith("SCHOOLCOMMS_")}
    settings = Settings("/tmp/does-not-matter", env=env)
    assert settings["school_name"] == "Example Academy"
    assert env_example()["STREAMLIT_SERVER_ALLOWED_HOSTS"].split() == [HOST]
    assert env_example()["STREAMLIT_CLIENT_SHOW_ERROR_DETAILS"] == "none"


def nginx_text() -> str:
    return (DEPLOY / "nginx" / "schoolcomms.conf").read_text()


def nginx_blocks(text: str) -> dict[str, str]:
    """Each ``location …`` block's body, keyed by its location line (comments removed)."""
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    blocks = {}
    for match in re.finditer(r"location\s+([^{]+)\{", text):
        depth, start = 1, match.end()
        position = start
        while depth:
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            position += 1
        blocks[match.group(1).strip()] = text[start : position - 1]
    return blocks


def directives(body: str) -> list[str]:
    return [" ".join(d.split()) for d in body.split(";") if d.strip()]


def test_nginx_passes_the_streamlit_websocket():
    stream = directives(nginx_blocks(nginx_text())["/_stcore/stream"])
    assert "proxy_http_version 1.1" in stream
    assert "proxy_set_header Upgrade $http_upgrade" in stream
    assert 'proxy_set_header Connection "upgrade"' in stream
    assert "proxy_pass http://schoolcomms_dashboard" in stream
    timeout = next(d for d in stream if d.startswith("proxy_read_timeout"))
    assert int(timeout.split()[1].rstrip("s")) >= 3600


def test_nginx_every_proxied_location_sets_all_its_headers():
    # proxy_set_header in a location replaces the server's set: each repeats them all.
    for where, body in nginx_blocks(nginx_text()).items():
        found = directives(body)
        if not any(d.startswith("proxy_pass") for d in found):
            continue
        assert "proxy_set_header Host $http_host" in found, where  # Origin must match Host
        assert "proxy_set_header X-Forwarded-Proto $scheme" in found, where
        assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for" in found, where


def test_nginx_tls_redirect_upload_size_and_internal_paths():
    text = nginx_text()
    assert re.search(r"listen 443 ssl", text) and "ssl_certificate_key" in text
    assert "return 301 https://$host$request_uri" in text
    assert f"server_name {HOST};" in text
    size = re.search(r"client_max_body_size (\d+)m;", text)
    assert size and int(size.group(1)) >= REGISTRY["max_extract_mb"].default
    blocks = nginx_blocks(text)
    assert directives(blocks["= /_stcore/metrics"]) == ["return 404"]
    assert directives(blocks["/_stcore/agent/"]) == ["return 404"]


def test_caddy_site():
    text = (DEPLOY / "caddy" / "Caddyfile").read_text()
    assert re.search(rf"^{re.escape(HOST)} {{$", text, re.M)  # automatic HTTPS for the name
    assert "max_size 4GB" in text and "Strict-Transport-Security" in text
    assert "@internal path /_stcore/metrics /_stcore/agent/*" in text
    assert text.count("{") == text.count("}")


def test_the_admin_wrapper_is_a_valid_shell_script():
    script = DEPLOY / "schoolcomms-admin"
    assert script.stat().st_mode & 0o111
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    assert "runuser -u" in text and "/etc/schoolcomms/schoolcomms.env" in text


def test_operations_doc_covers_every_deploy_file():
    text = DOCS.read_text()
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        relative = path.relative_to(DEPLOY.parent).as_posix()
        assert relative in text, f"docs/operations.md does not mention {relative}"
    for command in ("schoolcomms backup", "schoolcomms restore", "schoolcomms health"):
        assert command in text
