"""The sandbox: the Jinja environments templates run in, and the save-time check against them.

Templates are Jinja2 text rendered in a :class:`~jinja2.sandbox.SandboxedEnvironment`
with :class:`~jinja2.StrictUndefined`, no globals and no loader (no ``include`` or
``extends``). :data:`PLAIN_ENV` (SMS, letters, e-mail text) does not escape;
:data:`HTML_ENV` does. Both add the ``ukdate`` and ``time`` filters.

:func:`validate` walks a parsed template and reports, as plain-English sentences,
syntax errors, unknown merge groups and fields, unknown filters, and constructs the
sandbox would block or that have no place in a message (names starting with ``_``,
function calls, ``|safe``, ``include``/``extends``/``macro``…).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from senders.merge_fields import DATE_STYLES, LIST_GROUPS, MERGE_FIELDS, hhmm, ukdate


def _environment(html: bool) -> SandboxedEnvironment:
    """A sandboxed environment with only the merge fields' filters; ``html`` escapes."""
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=lambda value: "" if value is None else value,
    )
    env.globals.clear()  # no range(), cycler, lipsum…: only the merge fields
    env.filters.update({"ukdate": ukdate, "time": hhmm})
    return env


PLAIN_ENV = _environment(html=False)
HTML_ENV = _environment(html=True)


# ---- validation ------------------------------------------------------------------------

_BLOCKED: dict[type[nodes.Node], str] = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.Block: "block",
    nodes.ScopedEvalContextModifier: "autoescape",
    nodes.EvalContextModifier: "autoescape",
}
_UNSAFE = "is blocked: names starting with _ are unsafe."
# Filters that look up an attribute named by a string argument (``attr('x')``,
# ``map(attribute='x')``, ``sort(attribute='a.b')``…): such a string is a field name too.
_ATTRIBUTE_FILTERS = frozenset(
    {"attr", "map", "selectattr", "rejectattr", "groupby", "sort", "sum", "unique", "min", "max"}
)


def _unsafe_name(value: object) -> bool:
    """Whether ``value`` names an attribute (or a dotted path) with a part starting with _."""
    return isinstance(value, str) and any(part.startswith("_") for part in value.split("."))


@dataclass(frozen=True)
class _Kind:
    """What an expression is: a ``record`` group, a ``list`` group or a single ``value``."""

    kind: str
    group: str
    path: str


class _Checker:
    """Walks a parsed template, collecting problems with merge fields and safety.

    A name the template assigns (``set``, ``for``, ``with``) is a local variable whose
    attributes are not checked, except a loop variable over a list group (it has the
    item group's fields) and ``{% set x = student %}`` (``x`` has the student fields).
    """

    def __init__(self, env: SandboxedEnvironment, ast: nodes.Template):
        self.env = env
        self.problems: list[str] = []
        self.locals = {n.name: None for n in ast.find_all(nodes.Name) if n.ctx != "load"}

    def add(self, node: nodes.Node, message: str) -> None:
        self.problems.append(f"Line {node.lineno}: {message}")

    def visit(self, node: nodes.Node, scope: dict[str, _Kind | None]) -> None:
        if type(node) in _BLOCKED:
            tag = _BLOCKED[type(node)]
            self.add(node, f"{{% {tag} %}} cannot be used in a message template.")
        elif isinstance(node, nodes.For):
            source = self.expr(node.iter, scope)
            inner = dict(scope, loop=None)
            if isinstance(node.target, nodes.Name) and source and source.kind == "list":
                item = LIST_GROUPS[source.group]
                inner[node.target.name] = _Kind("record", item, node.target.name)
            for child in [*([node.test] if node.test else []), *node.body]:
                self.visit(child, inner)
            for child in node.else_:
                self.visit(child, scope)
        elif isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name):
            scope[node.target.name] = self.expr(node.node, scope)
        elif isinstance(node, nodes.Keyword) and node.key == "attribute":
            if isinstance(node.value, nodes.Const) and _unsafe_name(node.value.value):
                self.add(node, f"'{node.value.value}' {_UNSAFE}")
        elif isinstance(node, nodes.Expr):
            self.expr(node, scope)
        else:
            for child in node.iter_child_nodes():
                self.visit(child, scope)

    def expr(self, node: nodes.Expr, scope: dict[str, _Kind | None]) -> _Kind | None:
        """Check an expression; return what it is when that is known."""
        if isinstance(node, nodes.Name):
            return self.name(node, scope)
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            return self.attribute(node, scope)
        if isinstance(node, nodes.Filter | nodes.Test):
            what, known = (
                ("filter", self.env.filters)
                if isinstance(node, nodes.Filter)
                else ("test", self.env.tests)
            )
            if node.name == "safe":
                self.add(node, "the |safe filter is not allowed: merge values must stay escaped.")
            if isinstance(node, nodes.Filter) and node.name in _ATTRIBUTE_FILTERS:
                for arg in node.args:
                    if isinstance(arg, nodes.Const) and _unsafe_name(arg.value):
                        self.add(node, f"'{arg.value}' {_UNSAFE}")
                first = node.args[0] if node.args else None
                if node.name == "attr" and not isinstance(first, nodes.Const):
                    self.add(
                        node,
                        "|attr() needs the field's name written out; use {{ student.forename }}.",
                    )
            elif node.name not in known:
                self.add(node, f"there is no {what} called '{node.name}'.")
            style = node.args[0] if node.name == "ukdate" and node.args else None
            if isinstance(style, nodes.Const) and style.value not in DATE_STYLES:
                self.add(
                    node, f"ukdate style {style.value!r} is not one of {', '.join(DATE_STYLES)}."
                )
        elif isinstance(node, nodes.Call):
            callee = node.node
            if not (
                isinstance(callee, nodes.Getattr) and getattr(callee.node, "name", "") == "loop"
            ):
                self.add(
                    node,
                    f"calling '{_dotted(callee)}()' is not allowed in a message "
                    "template; use a filter instead, e.g. {{ student.name|upper }}.",
                )
        for child in node.iter_child_nodes():
            self.visit(child, scope)
        return None

    def name(self, node: nodes.Name, scope: dict[str, _Kind | None]) -> _Kind | None:
        if node.name in scope or node.ctx != "load":
            return scope.get(node.name)
        if node.name.startswith("_"):
            self.add(node, f"'{node.name}' {_UNSAFE}")
        elif node.name in LIST_GROUPS:
            return _Kind("list", node.name, node.name)
        elif node.name in MERGE_FIELDS:
            return _Kind("record" if MERGE_FIELDS[node.name] else "value", node.name, node.name)
        elif node.name not in self.locals:
            groups = ", ".join(MERGE_FIELDS)
            self.add(node, f"unknown merge field group '{node.name}'. The groups are: {groups}.")
        return None

    def attribute(self, node: nodes.Getattr | nodes.Getitem, scope: dict) -> _Kind | None:
        key: Any = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const):
                key = node.arg.value
            else:
                self.expr(node.arg, scope)
        base = self.expr(node.node, scope)
        if isinstance(key, str) and key.startswith("_"):
            self.add(node, f"'{key}' {_UNSAFE}")
        elif base is None or key is None:
            pass
        elif base.kind == "list" and isinstance(key, int):
            return _Kind("record", LIST_GROUPS[base.group], f"{base.path}[{key}]")
        elif base.kind == "list":
            loop = f"{{% for s in {base.path} %}}{{{{ s.{key} }}}}{{% endfor %}}"
            self.add(node, f"{base.path} is a list of pupils, so loop over it: {loop}.")
        elif base.kind == "value":
            self.add(node, f"{base.path} is a single value and has no field '{key}'.")
        elif key in MERGE_FIELDS[base.group]:
            return _Kind("value", base.group, f"{base.path}.{key}")
        else:
            fields = ", ".join(MERGE_FIELDS[base.group])
            self.add(
                node,
                f"unknown merge field '{base.path}.{key}'. The {base.group} fields are: {fields}.",
            )
        return None


def _dotted(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    return f"{_dotted(node.node)}.{node.attr}" if isinstance(node, nodes.Getattr) else "…"


def find_problems(text: str, html: bool = False) -> list[str]:
    """Problems with a template's text for the plain (or HTML) environment; [] if none."""
    env = HTML_ENV if html else PLAIN_ENV
    try:
        ast = env.parse(text)
    except TemplateSyntaxError as exc:
        return [f"Line {exc.lineno}: the template has a syntax error: {exc.message}."]
    checker = _Checker(env, ast)
    checker.visit(ast, {})
    problems = list(dict.fromkeys(checker.problems))
    if not problems:
        try:
            env.compile(text)
        except TemplateSyntaxError as exc:
            problems.append(f"Line {exc.lineno}: {exc.message}")
    return problems


def validate(text: str, *, channel: str, html: bool = False) -> list[str]:
    """Problems with a template, as plain-English sentences; an empty list means it is fine.

    Finds syntax errors (with the line), unknown merge groups and fields, unknown
    filters, and constructs the sandbox would block (names starting with ``_``,
    function calls, ``|safe``, other templates). Run it when a template is saved.
    """
    from schoolcomms.ops.models import CHANNELS

    if channel not in CHANNELS:
        return [f"Unknown channel {channel!r}: use one of {', '.join(CHANNELS)}."]
    return find_problems(text or "", html)
