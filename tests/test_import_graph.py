"""The import graph of the three packages: one direction of knowledge, and no cycles.

``task_loaders`` imports neither other package, ``measures`` never imports ``benchmark``, and the
graph of every import (at module level or inside a function, where a cycle likes to hide) is acyclic;
no import inside a function leads back to its own module, even through a package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).parents[1]
PACKAGES = ("task_loaders", "measures", "benchmark")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def _imports(name: str, path: Path, modules) -> list[tuple[str, int, bool]]:
    """(imported project module, line, inside a function) for every import statement of a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        inside = id(node) in nested
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.append((target, node.lineno, inside))
    return out


def _graph():
    modules = _modules()
    return modules, {name: _imports(name, path, modules) for name, path in modules.items()}


def test_task_loaders_import_neither_other_package_and_measures_never_import_benchmark():
    _, graph = _graph()
    wrong = [f"{source} imports {target} (line {line})" for source, edges in graph.items() for target, line, _ in edges
             if (source.startswith("task_loaders") and not target.startswith("task_loaders"))
             or (source.startswith("measures") and target.startswith("benchmark"))]
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _is_package_of(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def test_no_import_cycle_even_through_imports_inside_functions():
    modules, graph = _graph()
    # A package's __init__ importing its own submodules, and those importing names the package
    # re-exports, is how packages work; every other edge counts.
    edges = {source: [t for t, _, _ in targets if not _is_package_of(t, source) and not _is_package_of(source, t)]
             for source, targets in graph.items()}
    cycles = _cycles(edges)
    assert not cycles, f"import cycles: {cycles}"


def _hiding_imports(graph) -> list[str]:
    """Imports inside a function whose target reaches back to the importing module through any imports,
    those of a package's __init__ included: the import was moved into the function to hide a cycle."""
    edges = {source: {t for t, _, _ in targets} for source, targets in graph.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            v = todo.pop()
            if v == goal:
                return True
            if v not in seen:
                seen.add(v)
                todo += edges.get(v, ())
        return False

    return [f"{source} line {line}: imports {target} inside a function, and {target} imports {source} back"
            for source, targets in graph.items() for target, line, inside in targets
            if inside and reaches(target, source)]


def test_no_import_inside_a_function_hides_a_cycle():
    """Stricter than the cycle test for imports in functions: a submodule that imports its own package's
    __init__ (which imports the submodule) inside a function is a hidden cycle too."""
    _, graph = _graph()
    hidden = _hiding_imports(graph)
    assert not hidden, "\n".join(hidden)
    # and the check itself finds one: a registry importing its package lazily, the package importing it
    fake = {"pkg": [("pkg.registry", 1, False)], "pkg.registry": [("pkg", 9, True)], "pkg.other": [("pkg", 2, False)]}
    assert _hiding_imports(fake) == ["pkg.registry line 9: imports pkg inside a function, and pkg imports "
                                     "pkg.registry back"]


def test_statistics_know_nothing_of_measures():
    """``measures.stats`` (pure statistics of arrays and tensors) imports only itself and ``measures.checks``:
    not the view, the registry, the catalogue, the plugins nor any measure."""
    _, graph = _graph()
    stats = [name for name in graph if name.startswith("measures.stats")]
    assert {"measures.stats.margins", "measures.stats.planes", "measures.stats.batchnorm_folding"} <= set(stats)
    wrong = [f"{source} imports {target} (line {line})" for source in stats for target, line, _ in graph[source]
             if target.startswith("measures") and not target.startswith("measures.stats")
             and target != "measures.checks"]
    assert not wrong, "\n".join(wrong)


def test_measure_families_build_on_the_contract_and_the_statistics():
    """Adapters import the contract and the statistics, never the benchmark, and no family imports another."""
    _, graph = _graph()
    wrong = []
    for source, edges in graph.items():
        if not source.startswith("measures.families."):
            continue
        family = source.split(".")[2]
        for target, line, _ in edges:
            other = target.split(".")[2] if target.startswith("measures.families.") else None
            if other not in (None, family, "per_layer") and family != "per_layer":
                wrong.append(f"{source} imports {target} (line {line})")
    assert not wrong, "\n".join(wrong)


def test_the_graph_sees_relative_and_function_level_imports():
    """The walker itself: it must find the edges the two tests above rely on."""
    _, graph = _graph()
    assert {"measures.registry", "measures.stats.batchnorm_folding"} <= {t for t, _, _ in graph["measures.model_view"]}
    assert "task_loaders.keras_layers" in {t for t, _, _ in graph["measures.model_view"]}
    assert any(inside for edges in graph.values() for _, _, inside in edges)  # cli's lazy imports
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
