"""No file-level import cycles: the layer contract (lint-imports) sees packages, this sees modules.

Every `import` and `from ... import` counts, at the top of a file or inside a function (a deferred import hides a
cycle from Python, not from a reader). A cycle is a strongly connected group of two or more modules."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kernels", "indexers", "retrievers", "rag", "services", "eval")
KNOWN: list[set[str]] = []  # cycles tolerated for now: none (the reranker family's went with #19)


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the repository modules it imports."""
    mods = _modules()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        here = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module or ""
                targets = [owner(f"{base}.{a.name}") for a in node.names]
            else:
                continue
            graph[m] |= {t for t in targets if t and t != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups of two or more modules (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def test_the_checker_finds_a_cycle_and_only_cycles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_level_import_cycle():
    found = cycles(import_graph())
    new = [sorted(c) for c in found if c not in KNOWN]
    assert not new, f"import cycles between files: {new}; move what both need into a module both import"
    gone = [sorted(c) for c in KNOWN if c not in found]
    assert not gone, f"these known cycles are gone: remove them from KNOWN: {gone}"


def test_no_private_name_is_imported_across_modules():
    """A leading underscore means "this file's own": another module importing it couples to an internal.
    Private extension modules (kernels/_bm25, kernels/_fm) are modules, not names, and may be imported."""
    bad = []
    for m, f in _modules().items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module.split(".")[0] not in PACKAGES:
                continue
            pkg_dir = ROOT.joinpath(*node.module.split("."))
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__") and not any(pkg_dir.glob(f"{a.name}.*")):
                    bad.append(f"{m} imports {node.module}.{a.name}")
    assert not bad, bad
