"""The ``backup`` and ``restore`` commands (thin wrappers over schoolcomms.backup)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from schoolcomms.cli import Refused, _settings, main


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _size(count: int) -> str:
    """A byte count in words: 812 bytes, 16.3 MB."""
    if count < 1000:
        return f"{count} bytes"
    value = float(count)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


@main.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--include-archive",
    is_flag=True,
    help="Also copy the archive of loaded extract files (<data dir>/archive).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_context
def backup_command(ctx: click.Context, dest: Path, include_archive: bool, as_json: bool) -> None:
    """Back up the ops store, the current warehouse generation, settings.toml and
    printed letters into the new folder DEST, with a manifest of SHA-256 checksums.

    Safe while the dashboard and the scheduler run: the SQLite ops store is copied with
    SQLite's online backup API (PostgreSQL with pg_dump), and warehouse generations never
    change once loaded. Secrets (environment, .streamlit/secrets.toml) are not included.
    Exit 0 backed up, 2 refused (nothing written). See docs/operations.md.

    \b
    Example:
      schoolcomms backup /var/backups/schoolcomms/$(date +%Y%m%d-%H%M)
    """
    from schoolcomms.backup import BackupError, backup

    settings = _settings(ctx)
    try:
        manifest = backup(settings, dest, include_archive=include_archive)
    except BackupError as exc:
        raise Refused(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"backup": str(dest.resolve()), **manifest.as_dict()}, indent=2))
        return
    warehouse = (
        f"warehouse generation {manifest.warehouse_generation}"
        if manifest.warehouse_generation is not None
        else "no warehouse (nothing loaded yet)"
    )
    click.echo(
        f"Backed up {settings.data_dir} to {dest.resolve()}: ops store ({manifest.ops_engine}, "
        f"schema {manifest.ops_revision}), {warehouse}; {len(manifest.files)} files, "
        f"{_size(manifest.total_bytes)}."
    )
    click.echo(f"Check it with `schoolcomms restore {dest} --verify-only`.")


@main.command("restore")
@click.argument("src", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing installation; what is there is moved to <data dir>/replaced-<time>/.",
)
@click.option(
    "--verify-only", is_flag=True, help="Check the backup's checksums and schema; restore nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print what was restored as JSON.")
@click.pass_context
def restore_command(
    ctx: click.Context, src: Path, force: bool, verify_only: bool, as_json: bool
) -> None:
    """Restore a backup made by `schoolcomms backup` into the data directory.

    Every file is checked against the manifest's SHA-256 first; a damaged backup, or one
    whose ops store is newer than this version knows, is refused and nothing changes.
    The data directory must be empty unless --force. Stop the dashboard and the
    scheduler first. An older ops store is migrated forward. Exit 0 restored (or, with
    --verify-only, sound), 2 refused.

    \b
    Example:
      schoolcomms --data-dir /var/lib/schoolcomms/data restore /var/backups/schoolcomms/20261120-0200
    """
    from schoolcomms.backup import BackupError, restore, verify

    settings = _settings(ctx)
    try:
        if verify_only:
            manifest = verify(src)
        else:
            report = restore(settings, src, force=force, actor=_actor())
            manifest = report.manifest
    except BackupError as exc:
        raise Refused(str(exc)) from exc
    if verify_only:
        if as_json:
            click.echo(json.dumps({"backup": str(src), "sound": True, **manifest.as_dict()}))
        else:
            click.echo(
                f"The backup at {src} is sound: {len(manifest.files)} files match their "
                f"checksums; made {manifest.created_at}, ops store schema "
                f"{manifest.ops_revision}, warehouse generation {manifest.warehouse_generation}."
            )
        return
    if as_json:
        data = {
            "restored_from": str(report.source),
            "data_dir": str(settings.data_dir),
            "created_at": manifest.created_at,
            "revision_in_backup": report.revision_before,
            "revision_now": report.revision_after,
            "warehouse_generation": manifest.warehouse_generation,
            "replaced": None if report.replaced is None else str(report.replaced),
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"Restored the backup of {manifest.created_at} into {settings.data_dir}: ops store "
        f"schema {report.revision_after}, warehouse generation {manifest.warehouse_generation}."
    )
    if report.migrated:
        click.echo(
            f"The ops store was migrated from {report.revision_before} to {report.revision_after}."
        )
    if report.replaced is not None:
        click.echo(f"What was there before is in {report.replaced}; delete it when satisfied.")
    click.echo(
        "Start the services again: systemctl start schoolcomms-scheduler schoolcomms-dashboard"
    )
