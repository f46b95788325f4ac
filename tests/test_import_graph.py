"""No import cycle between the apps (issue 14).

Every product module is parsed with ``ast`` and each import, at module level or inside a function
(an import deferred into a function is still a dependency, only a hidden one), becomes an edge from
the importing app to the imported one. The app-level graph must have no cycle.

The intended order: triage (the desk: tickets, customers, servers) at the bottom; diagnostics and
mailgate on top of it; webhooks, api and reports on top of those; composition (pages and commands
that join them) on top of everything. Where a desk page shows another app's parts, that app fills
the desk's extension points (triage/extensions.py) instead of triage importing it.

The project package's own wiring (settings, the root URLconf, the Celery app, WSGI) lives in
``triage/`` for historical reasons but is the composition root: it names every app by design, so
it counts as its own node, "project", which no app may import; only it may import composition.

No import is exempt. Where the desk needs another app's work (mailgate keeps the files a tech
attaches, names who opened a ticket by mail for {{requester}}, and refuses a contact address that a
mail route gives to another customer), that app fills the desk's extension points in its
AppConfig.ready. test_one_import_back_into_the_desk_would_close_a_cycle shows that the check fails
on one import back.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("triage", "diagnostics", "mailgate", "webhooks", "api", "reports", "composition")
# The composition root: modules Django and Celery load by name, that wire every app together.
PROJECT_MODULES = {"triage.settings", "triage.urls", "triage.celery", "triage.wsgi", "triage.asgi"}
# The package's __init__ loads the Celery app (Celery's documented Django layout): wiring too.
PROJECT_FILES = {"triage/__init__.py"}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository
    line: int
    source: str  # importing app (or "project")
    target: str  # imported app (or "project")
    module: str  # the module named by the import

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _node(module: str) -> str | None:
    """The graph node a module belongs to: "project", one of APPS, or None (not ours)."""
    if any(module == m or module.startswith(m + ".") for m in PROJECT_MODULES):
        return "project"
    top = module.split(".")[0]
    return top if top in APPS else None


def _imported_modules(tree: ast.AST, *, module: str, is_package: bool):
    """(line, module) for every import in ``tree``, relative ones resolved."""
    for node in ast.walk(tree):  # walk: imports inside functions and classes count too
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
            for alias in node.names:
                # "from triage import urls" imports the module triage.urls, which is the project's.
                submodule = f"{base}.{alias.name}"
                yield node.lineno, submodule if submodule in PROJECT_MODULES else base


@cache
def app_imports() -> tuple[Import, ...]:
    """Every import from one node to another, over the product code of every app."""
    found = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            module = _module_name(path)
            rel = path.relative_to(ROOT).as_posix()
            source = "project" if rel in PROJECT_FILES else _node(module)
            tree = ast.parse(path.read_text(), filename=rel)
            for line, imported in _imported_modules(tree, module=module, is_package=path.name == "__init__.py"):
                target = _node(imported)
                if target is not None and target != source:
                    imp = Import(path=rel, line=line, source=source, target=target, module=imported)
                    found[(rel, line, imported)] = imp
    return tuple(found.values())


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each a cycle's members."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def graph(imports) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        edges[imp.source].add(imp.target)
    return edges


def _report(cycles: list[list[str]], imports) -> str:
    lines = []
    for members in cycles:
        lines.append("cycle between: " + ", ".join(members))
        for imp in imports:
            if imp.source in members and imp.target in members:
                lines.append(f"  {imp.source} -> {imp.target}: {imp}")
    return "\n".join(lines)


def test_the_walk_sees_module_and_function_level_imports():
    imports = app_imports()
    # triage/celery.py imports run_batches inside a signal receiver: a deferred import still counts.
    assert any(i.path == "triage/celery.py" and i.target == "diagnostics" for i in imports)
    assert any(i.path == "diagnostics/knowledge/outcomes.py" and i.target == "triage" for i in imports)


def test_the_cycle_finder_finds_a_cycle_through_three_apps():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []


def test_nothing_imports_the_project_wiring_and_only_it_imports_the_composition_layer():
    wrong = [
        str(i) for i in app_imports() if i.target == "project" or (i.target == "composition" and i.source != "project")
    ]
    assert not wrong, "the project's wiring and the composition layer sit on top; no app imports them:\n" + "\n".join(
        wrong
    )


def test_there_is_no_import_cycle_between_apps():
    imports = app_imports()
    cycles = _cycles(graph(imports))
    assert not cycles, "import cycle between apps:\n" + _report(cycles, imports)


def test_one_import_back_into_the_desk_would_close_a_cycle():
    # What the check above would meet if the desk imported the mail app again (mailgate imports triage).
    back = Import(path="triage/forms.py", line=1, source="triage", target="mailgate", module="mailgate.upload_services")
    imports = (*app_imports(), back)
    cycles = _cycles(graph(imports))
    assert cycles == [["mailgate", "triage"]]
    assert "triage -> mailgate: triage/forms.py:1 imports mailgate.upload_services" in _report(cycles, imports)
