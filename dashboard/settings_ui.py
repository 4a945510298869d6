"""Page logic for the Settings page: which settings go in which tab, what each form
changed, tables shown, and the cached warehouse reads. Nothing here draws anything."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.common import _settings_for, _warehouse_for
from reports.staff import responsibilities_table, staff_directory
from schoolcomms.settings import MASK, REGISTRY, Setting, Settings, mask_url_password
from schoolcomms.settings_store import RESET

TTL_SECONDS = 300
# (tab title, registry sections shown in it); sections not named go under "More".
SETTING_TABS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("E-mail", ("email",)),
    ("SMS", ("messaging",)),
    ("Absence texts", ("absence texts",)),
    ("Scheduler", ("scheduler",)),
    ("Alerts", ("alerts",)),
    ("Letters", ("letters",)),
    ("More", ("general", "sign-in", "dispatch", "loading", "storage")),
)
SOURCE_WORDS = {
    "file": "set in settings.toml",
    "default": "the default",
    "secrets": "from .streamlit/secrets.toml",
    "override": "set for this process only",
}
LONG_TEXT = 80  # text settings longer than this (or with a line break) get a text area
OVERVIEW_COLUMNS = ["section", "name", "value", "source", "default", "help"]
RESPONSIBILITY_COLUMNS = ["staff", "staff_id", "role", "scope"]


def slug(text: str) -> str:
    """``text`` as a widget-key fragment."""
    return "".join(c if c.isalnum() else "_" for c in text.lower())


def tab_sections() -> list[tuple[str, list[str]]]:
    """Each settings tab with its registry sections, every section in exactly one tab."""
    named = {s for _, sections in SETTING_TABS for s in sections}
    leftover = sorted({s.section for s in REGISTRY.values()} - named)
    tabs = [(title, list(sections)) for title, sections in SETTING_TABS]
    tabs[-1][1].extend(leftover)
    return tabs


def settings_in(sections: Iterable[str]) -> list[Setting]:
    """The registry's settings of ``sections``, in registry order."""
    wanted = set(sections)
    return [s for s in REGISTRY.values() if s.section in wanted]


def source_of(settings: Settings, name: str) -> str:
    """Where the value comes from, in words (naming the variable for the environment)."""
    source = settings.source(name)
    if source == "env":
        return f"from the environment ({REGISTRY[name].env_var})"
    if source == "default" and REGISTRY[name].secret:
        return "not set"
    return SOURCE_WORDS.get(source, source)


def why_locked(settings: Settings, name: str) -> str | None:
    """Why ``name`` cannot be changed on the page (None: it can)."""
    setting = REGISTRY[name]
    if setting.secret:
        return (
            f"A secret: set {setting.env_var} in the environment or `{name}` in "
            ".streamlit/secrets.toml where the dashboard and scheduler run; it is never "
            "written to settings.toml."
        )
    if settings.source(name) in ("env", "override"):
        return (
            f"Set by the environment ({setting.env_var}); a value saved here would be "
            "ignored, so change it where the dashboard and scheduler are started."
        )
    if setting.type == "table":
        return f"A table: edit [{name}] in {settings.settings_file}."
    return None


def shown_value(settings: Settings, name: str) -> Any:
    """The value as the page shows it: secrets and URL passwords masked, tables as JSON."""
    setting, value = REGISTRY[name], settings[name]
    if setting.secret:
        return MASK if value else ""
    if setting.type == "table":
        return json.dumps(value, ensure_ascii=False, indent=1)
    return mask_url_password(value) if isinstance(value, str) else value


def is_long(setting: Setting, value: Any) -> bool:
    """Whether a text setting needs a text area rather than a one-line input."""
    text = str(value)
    return setting.type == "str" and (len(text) > LONG_TEXT or "\n" in text)


def _same(setting: Setting, new: Any, old: Any) -> bool:
    if setting.type == "str":
        return str(new).strip() == str(old)
    if setting.type in ("int", "float"):
        try:
            return math.isclose(float(new), float(old), rel_tol=0, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return new == old


def changes_from(
    settings: Settings, entered: Mapping[str, Any], resets: Iterable[str] = ()
) -> dict[str, Any]:
    """What a submitted form changes: entered values that differ, and resets (``RESET``).

    Locked settings (secrets, set by the environment, tables) are left out; a setting both
    reset and edited is reset.
    """
    out: dict[str, Any] = {}
    for name, value in entered.items():
        if why_locked(settings, name) is None and not _same(REGISTRY[name], value, settings[name]):
            out[name] = int(value) if REGISTRY[name].type == "int" else value
    for name in resets:
        if why_locked(settings, name) is None and settings.source(name) == "file":
            out[name] = RESET
    return out


def overview(settings: Settings) -> pd.DataFrame:
    """Every setting: section, name, value (secrets masked), source, default, help."""
    rows = [
        {
            "section": setting.section,
            "name": name,
            "value": str(shown_value(settings, name)),
            "source": source_of(settings, name),
            "default": "" if setting.secret else str(setting.default),
            "help": setting.help,
        }
        for name, setting in REGISTRY.items()
    ]
    return pd.DataFrame(rows, columns=OVERVIEW_COLUMNS)


def selected_rows(selection: Any, count: int) -> list[int]:
    """The row positions selected in a dataframe (``on_select="rerun"``), in range."""
    rows: list[Any] = []
    if selection:
        try:
            rows = list(selection["selection"]["rows"])
        except (KeyError, TypeError):
            rows = list(getattr(getattr(selection, "selection", None), "rows", []) or [])
    return [r for r in rows if isinstance(r, int) and 0 <= r < count]


def referral_table(options: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> pd.DataFrame:
    """One row per referral-list entry, the member of staff named."""
    rows = [
        {
            "id": o.get("id"),
            "label": o.get("label"),
            "staff_id": str(o.get("staff_id")),
            "staff": names.get(str(o.get("staff_id")), str(o.get("staff_id"))),
            "enabled": bool(o.get("enabled", True)),
            "updated_by": o.get("updated_by", ""),
        }
        for o in options
    ]
    return pd.DataFrame(rows, columns=["id", "label", "staff_id", "staff", "enabled", "updated_by"])


def groups_table(groups: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> pd.DataFrame:
    """One row per recipient (staff) group: members named, and the rules that use it."""
    rows = [
        {
            "id": g["id"],
            "name": g["name"],
            "members": ", ".join(names.get(s, s) for s in g["staff_ids"]) or "(nobody)",
            "count": len(g["staff_ids"]),
            "used_by": ", ".join(g["used_by"]),
            "updated_by": g["updated_by"],
        }
        for g in groups
    ]
    return pd.DataFrame(rows, columns=["id", "name", "members", "count", "used_by", "updated_by"])


def clear_settings_caches() -> None:
    """Forget the cached settings (and the warehouse built from them): a save shows at once."""
    _settings_for.clear()
    _warehouse_for.clear()


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def staff_names(data_dir: str, generation: int) -> dict[str, str]:
    """``{staff_id: "Ms Tara Teach (T1)"}`` for every member of staff in ``generation``."""
    frame = staff_directory(_warehouse_for(data_dir))
    return {str(r.staff_id): f"{r.name} ({r.staff_id})" for r in frame.itertuples(index=False)}


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Reading staff responsibilities…")
def responsibilities(data_dir: str, generation: int) -> pd.DataFrame:
    """Who holds which responsibility (form tutor of 10A, head of year 8, …), by staff."""
    return responsibilities_table(_warehouse_for(data_dir))[RESPONSIBILITY_COLUMNS]
