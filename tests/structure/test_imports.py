"""The package's shape: domains import each other without cycles, and growth is reached
only through its public modules.

Read from the source with ``ast`` (imports inside functions count too), so a new edge is
caught however it is written.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "backend" / "hedgerow"
# What another domain may import from the growth engine: its service (the rules' entry
# points) and schemas (the shapes it takes and returns).
GROWTH_PUBLIC = {"hedgerow.growth", "hedgerow.growth.service", "hedgerow.growth.schemas"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every hedgerow module `path` imports, at module level or inside functions."""
    found: set[str] = set()
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # `from hedgerow.growth import service` imports the module growth.service.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("hedgerow.")}


def _existing(name: str, modules: set[str]) -> str | None:
    """The module `name` refers to (a name imported from a module maps to the module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _domain(module: str) -> str | None:
    """The domain package of a module; None for top-level infrastructure modules."""
    parts = module.split(".")
    if len(parts) < 3 and not (PACKAGE_ROOT / parts[-1]).is_dir():
        return None
    return parts[1]


def _import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = {_existing(name, modules) for name in _imports(path)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def _domain_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in _import_graph().items():
        source = _domain(module)
        if source is None:
            continue
        for target in targets:
            domain = _domain(target)
            if domain is not None and domain != source:
                edges[source].add(domain)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in graph.get(node, ()):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycle_between_domains() -> None:
    graph = _domain_graph()
    cycles = _cycles(graph)
    details = [
        f"{' <-> '.join(c)}: "
        + "; ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c)
        for c in cycles
    ]
    assert cycles == [], "import cycles between domains:\n" + "\n".join(details)


def test_other_domains_reach_growth_only_through_its_public_modules() -> None:
    reaches = sorted(
        f"{module} imports {target}"
        for module, targets in _import_graph().items()
        if _domain(module) != "growth"
        for target in targets
        if target.startswith("hedgerow.growth.") and target not in GROWTH_PUBLIC
    )
    assert reaches == []


def test_growth_depends_only_on_shared_infrastructure_and_models() -> None:
    allowed = {
        "hedgerow.audit",
        "hedgerow.config",
        "hedgerow.db",
        "hedgerow.errors",
        "hedgerow.text",
        # gettext for the messages volunteers read (the i18n package imports no domain)
        "hedgerow.i18n",
        "hedgerow.i18n.translation",
    }
    outside = sorted(
        f"{module} imports {target}"
        for module, targets in _import_graph().items()
        if _domain(module) == "growth"
        for target in targets
        if _domain(target) not in {"growth", "models"} and target not in allowed
    )
    assert outside == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert _cycles(graph) == expected
