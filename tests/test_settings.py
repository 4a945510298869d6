"""The settings registry: lookup order, types, secrets."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from schoolcomms.cli import main
from schoolcomms.settings import MASK, REGISTRY, Settings, SettingsError, resolve_data_dir


def write_settings(data_dir, text):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "settings.toml").write_text(text, encoding="utf-8")


def test_defaults_when_nothing_is_set(tmp_path):
    settings = Settings(tmp_path, env={}, secrets_file=tmp_path / "none.toml")
    for name, setting in REGISTRY.items():
        assert settings[name] == setting.default
        assert settings.source(name) == "default"
    assert settings.resolved_ops_url == f"sqlite:///{tmp_path / 'ops.sqlite'}"


def test_environment_beats_file_beats_default(tmp_path):
    write_settings(tmp_path, 'generations_kept = 7\nschool_name = "Hillside"\n')
    settings = Settings(
        tmp_path, env={"SCHOOLCOMMS_GENERATIONS_KEPT": "3"}, secrets_file=tmp_path / "none.toml"
    )
    assert settings["generations_kept"] == 3 and settings.source("generations_kept") == "env"
    assert settings["school_name"] == "Hillside" and settings.source("school_name") == "file"
    assert settings.sms_pence_per_segment == 3.0


def test_table_setting_from_file_and_from_json_env(tmp_path):
    write_settings(tmp_path, '[sql_sources]\nstudents = "SELECT 1"\n')
    assert Settings(tmp_path, env={})["sql_sources"] == {"students": "SELECT 1"}
    env = {"SCHOOLCOMMS_SQL_SOURCES": json.dumps({"staff": "SELECT 2"})}
    assert Settings(tmp_path, env=env)["sql_sources"] == {"staff": "SELECT 2"}


def test_bad_value_names_setting_origin_and_fix(tmp_path):
    settings = Settings(tmp_path, env={"SCHOOLCOMMS_GENERATIONS_KEPT": "lots"})
    with pytest.raises(
        SettingsError, match="generations_kept.*SCHOOLCOMMS_GENERATIONS_KEPT.*'lots'"
    ):
        settings["generations_kept"]


def test_unknown_setting_in_file_is_refused(tmp_path):
    write_settings(tmp_path, "generation_kept = 3\n")
    with pytest.raises(SettingsError, match="unknown settings: generation_kept"):
        Settings(tmp_path, env={})


def test_secret_is_never_read_from_settings_toml(tmp_path):
    write_settings(tmp_path, 'mis_database_url = "postgresql://u:pw@h/db"\n')
    with pytest.raises(SettingsError, match="secret mis_database_url"):
        Settings(tmp_path, env={})


def test_secret_from_secrets_file_or_env_is_masked(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('mis_database_url = "postgresql://u:hunter2@h/db"\n')
    settings = Settings(tmp_path, env={}, secrets_file=secrets)
    assert settings["mis_database_url"].endswith("hunter2@h/db")
    assert settings.source("mis_database_url") == "secrets"
    row = next(r for r in settings.rows() if r["name"] == "mis_database_url")
    assert row["value"] == MASK


def test_settings_command_masks_secrets_and_lists_everything(tmp_path):
    env = {
        "SCHOOLCOMMS_MIS_DATABASE_URL": "mssql://sa:topsecret@mis/db",
        "SCHOOLCOMMS_DATA_DIR": str(tmp_path),
    }
    result = CliRunner().invoke(main, ["settings", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "topsecret" not in result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == set(REGISTRY)
    assert rows["mis_database_url"]["value"] == MASK
    assert rows["mis_database_url"]["source"] == "env"


def test_data_dir_lookup_order(tmp_path):
    assert resolve_data_dir(tmp_path / "cli", {"SCHOOLCOMMS_DATA_DIR": "/x"}) == tmp_path / "cli"
    assert resolve_data_dir(None, {"SCHOOLCOMMS_DATA_DIR": str(tmp_path)}) == tmp_path
    assert resolve_data_dir(None, {}).name == "data"
