"""Domains depend one way (README, "Architecture"): walk every import in gridgov/ — module level
and inside functions, ``TYPE_CHECKING`` blocks included — and fail on a cycle between domains
(a domain is a first-level folder of gridgov/) and on an import inside a function that reaches
another domain. Kernel modules (gridgov/*.py) are transparent: a domain that imports one depends
on whatever that module imports. Composition roots (the app factory, the CLI …) import every
domain and are imported by none."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import gridgov
from gridgov import events

PACKAGE = Path(gridgov.__file__).parent
# Top-level modules that wire domains together; no domain or kernel module may import them
# (except middleware's route table, which the app factory it belongs to hands it).
ROOTS = {"app", "cli", "schemas_export", "wiring", "models"}


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted (best effort for ``from x import name``)
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[Import]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    found: list[Import] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from gridgov.audit import service`` imports gridgov.audit.service
            targets = [f"{module}.{a.name}" for a in node.names] if module else []
        for target in targets:
            if target == "gridgov" or target.startswith("gridgov."):
                found.append(Import(name, target, node.lineno, id(node) in inside))
    return found


def _unit(module: str) -> str:
    """The domain (first-level folder) or top-level module a dotted name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gridgov"


def _is_domain(unit: str) -> bool:
    return (PACKAGE / unit).is_dir()


def _all_imports() -> list[Import]:
    return [i for path in sorted(PACKAGE.rglob("*.py")) for i in _imports(path)]


def _domain_graph(imports: list[Import]) -> dict[str, dict[str, Import]]:
    """domain → domain it depends on → one import that shows it (through kernel modules)."""
    direct: dict[str, dict[str, Import]] = defaultdict(dict)
    for i in imports:
        src, dst = _unit(i.source), _unit(i.target)
        if src != dst and dst != "gridgov":
            direct[src].setdefault(dst, i)

    graph: dict[str, dict[str, Import]] = defaultdict(dict)
    for src in [u for u in direct if _is_domain(u)]:
        stack = list(direct[src].items())
        seen: set[str] = set()
        while stack:
            dst, via = stack.pop()
            if dst in seen or dst == src:
                continue
            seen.add(dst)
            if _is_domain(dst):
                graph[src].setdefault(dst, via)
            elif dst not in ROOTS:  # a kernel module: its own imports count for ``src``
                stack.extend((d, via) for d in direct.get(dst, {}))
    return graph


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Strongly connected components of more than one domain (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_cycle_between_domains() -> None:
    graph = _domain_graph(_all_imports())
    problems = []
    for component in _cycles(graph):
        edges = [
            f"  {a} → {b}: {graph[a][b].source} line {graph[a][b].line} imports "
            f"{graph[a][b].target}"
            for a in component
            for b in component
            if b in graph.get(a, {})
        ]
        problems.append(f"cycle between {', '.join(component)}:\n" + "\n".join(edges))
    assert not problems, "\n".join(problems)


def test_no_function_level_import_of_another_domain() -> None:
    bad = []
    for i in _all_imports():
        src, dst = _unit(i.source), _unit(i.target)
        if not i.in_function or src in ROOTS or src == dst:
            continue
        if _is_domain(dst) or (_is_domain(src) and dst != "gridgov"):
            bad.append(f"{i.source} line {i.line}: imports {i.target} inside a function")
    assert not bad, "\n".join(bad)


def test_no_domain_or_kernel_module_imports_a_composition_root() -> None:
    bad = [
        f"{i.source} line {i.line}: imports {i.target}"
        for i in _all_imports()
        if _unit(i.target) in ROOTS
        and _unit(i.source) not in ROOTS
        and not (_unit(i.source) == "middleware" and i.in_function and _unit(i.target) == "app")
    ]
    assert not bad, "\n".join(bad)


def test_the_walk_sees_what_it_checks() -> None:
    """The checks above look at real edges (a walk that found nothing would pass them all)."""
    graph = _domain_graph(_all_imports())
    assert "hierarchy" in graph["households"]  # households derive their grid from the hierarchy
    assert "auth" in graph["hierarchy"]  # through the kernel's deps module too
    assert "households" not in graph["hierarchy"]
    assert "issues" not in graph["visits"]
    assert _cycles({"a": {"b": None}, "b": {"a": None}}) == [["a", "b"]]  # type: ignore[dict-item]


def test_every_required_event_has_a_subscriber() -> None:
    """With the composition root loaded (tests/conftest.py imports gridgov.wiring, as the app
    and the CLI do), no event a domain publishes finds nobody listening."""
    for module in pkgutil.walk_packages(gridgov.__path__, "gridgov."):
        if module.name.endswith(".events") or module.name in ("gridgov.privacy", "gridgov.trail"):
            importlib.import_module(module.name)

    def subclasses(cls: type) -> list[type]:
        return [c for s in cls.__subclasses__() for c in (s, *subclasses(s))]

    kinds = [e for e in subclasses(events.Event) if e.__module__.startswith("gridgov.")]
    assert len(kinds) >= 7
    lonely = [e.__qualname__ for e in kinds if e.required and not events.subscribers(e)]
    assert not lonely, lonely
