"""The generated docs match the code, and nothing is left undocumented."""

from __future__ import annotations

import click

from pipelines.specs import EXTRACTS
from schoolcomms import docs
from schoolcomms.cli import main
from schoolcomms.settings import REGISTRY


def test_generated_docs_are_current():
    stale = docs.stale()
    assert not stale, f"run `make docs`: {', '.join(str(p) for p in stale)} differ from the code"


def test_every_setting_has_help_and_is_documented():
    text = (docs.DOCS_DIR / "settings.md").read_text(encoding="utf-8")
    for name, setting in REGISTRY.items():
        assert len(setting.help) > 20, f"setting {name} needs real help text"
        assert f"`{name}`" in text, f"setting {name} is missing from docs/settings.md"
        assert setting.env_var in text


def test_every_extract_and_column_is_documented():
    text = (docs.DOCS_DIR / "extracts.md").read_text(encoding="utf-8")
    for extract in EXTRACTS.values():
        assert f"### {extract.name}\n" in text
        section = text.split(f"### {extract.name}\n", 1)[1].split("\n### ", 1)[0]
        for column in extract.columns:
            assert f"| {column.name} |" in section, f"{extract.name}.{column.name} undocumented"


def test_every_command_has_an_example_and_is_documented():
    text = (docs.DOCS_DIR / "cli.md").read_text(encoding="utf-8")
    ctx = click.Context(main, info_name="schoolcomms", **main.context_settings)
    for name, command in main.commands.items():
        help_text = command.get_help(click.Context(command, info_name=name, parent=ctx))
        assert "Example" in help_text, f"`schoolcomms {name} --help` needs an example"
        assert f"## {name}\n" in text, f"command {name} is missing from docs/cli.md"
        for child_name, child in getattr(command, "commands", {}).items():
            child_help = child.get_help(click.Context(child, info_name=child_name))
            assert "Example" in child_help, f"`schoolcomms {name} {child_name}` needs an example"
            assert f"### {name} {child_name}\n" in text, f"{name} {child_name} is undocumented"


def test_readme_shows_both_commands_first():
    readme = (docs.DOCS_DIR.parent / "README.md").read_text(encoding="utf-8")
    head = readme[:1500]
    assert "make run" in head and "make test" in head


def test_every_merge_field_is_documented():
    from senders.templates import MERGE_FIELDS

    text = (docs.DOCS_DIR / "templates.md").read_text(encoding="utf-8")
    for group, fields in MERGE_FIELDS.items():
        assert f"### {group}\n" in text, f"merge group {group} undocumented"
        for name in fields or {}:
            assert f"{{{{ {group}.{name} }}}}" in text, f"{group}.{name} undocumented"
