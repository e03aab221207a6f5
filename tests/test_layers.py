"""The package imports only downward and has no import cycles.

The layer order is the list in docs/architecture.md (between `<!-- layers -->` markers). Every
module under spurious/ is parsed with ast, so function-local and relative imports count as much as
top-level ones (a cycle hidden in a function is still a cycle of the design)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "spurious"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def read_layers(text: str) -> list[tuple[str, list[str]]]:
    """[(layer name, [module prefixes])] bottom to top, from the marked list."""
    block = re.search(r"<!-- layers -->(.*?)<!-- /layers -->", text, re.S)
    assert block, f"{ARCHITECTURE} has no <!-- layers --> ... <!-- /layers --> list"
    layers = []
    for line in block.group(1).strip().splitlines():
        item = re.match(r"\s*\d+\.\s+\*\*([\w-]+)\*\*\s+—\s+(.*?):\s", line)
        assert item, f"layer line not understood: {line!r}"
        modules = re.findall(r"`([\w.]+)`", item.group(2))
        assert modules, f"layer {item.group(1)!r} names no module"
        layers.append((item.group(1), modules))
    return layers


def module_files() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported package module, line) for every import statement in the file, wherever it stands."""
    is_package = path.name == "__init__.py"
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []

    def nearest(name: str) -> str | None:
        # `import spurious.a.b` names a module; a dotted name below a module (an attribute) maps up
        parts = name.split(".")
        while parts:
            if ".".join(parts) in known:
                return ".".join(parts)
            parts.pop()
        return None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "spurious" or alias.name.startswith("spurious."):
                    target = nearest(alias.name)
                    if target:
                        found.append((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + (node.module.split(".") if node.module else []))
            else:
                base = node.module or ""
            if not (base == "spurious" or base.startswith("spurious.")):
                continue
            for alias in node.names:
                # `from pkg import mod` imports the submodule; `from pkg import name` the package itself
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else nearest(base)
                if target:
                    found.append((target, node.lineno))
    return sorted(found, key=lambda item: item[1])


def import_graph() -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    files = module_files()
    known = set(files)
    graph: dict[str, dict[str, int]] = {m: {} for m in files}
    for module, path in files.items():
        for target, line in imports_of(module, path, known):
            if target != module:
                graph[module].setdefault(target, line)
    return files, graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components with more than one module (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return sorted(components)


def layer_of(module: str, layers: list[tuple[str, list[str]]]) -> int | None:
    """Position of the layer whose most specific prefix matches; `spurious` alone is the package init."""
    best, best_length = None, -1
    for position, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "spurious" and module.startswith(prefix + "."))
            if matches and len(prefix) > best_length:
                best, best_length = position, len(prefix)
    return best


def test_every_module_has_a_layer():
    layers = read_layers(ARCHITECTURE.read_text())
    unplaced = [m for m in module_files() if layer_of(m, layers) is None]
    assert not unplaced, f"modules with no layer in {ARCHITECTURE.name}: {', '.join(unplaced)}"


def test_no_import_cycles():
    files, graph = import_graph()
    cycles = strongly_connected(graph)
    lines = []
    for component in cycles:
        members = set(component)
        edges = [f"{a} -> {b} ({files[a].relative_to(ROOT)}:{line})"
                 for a in component for b, line in sorted(graph[a].items()) if b in members]
        lines.append("cycle among " + ", ".join(component) + ":\n      " + "\n      ".join(edges))
    assert not cycles, "import cycles:\n  " + "\n  ".join(lines)


def test_imports_only_go_down():
    layers = read_layers(ARCHITECTURE.read_text())
    files, graph = import_graph()
    upward = []
    for module, targets in sorted(graph.items()):
        here = layer_of(module, layers)
        for target, line in sorted(targets.items()):
            there = layer_of(target, layers)
            if here is not None and there is not None and there > here:
                upward.append(f"{module} ({layers[here][0]}) imports {target} ({layers[there][0]}) "
                              f"at {files[module].relative_to(ROOT)}:{line}")
    assert not upward, "imports from a lower layer to a higher one:\n  " + "\n  ".join(upward)


# -- the checker itself, on small known graphs ------------------------------------------------------
def test_tarjan_finds_exactly_the_cycles():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1, "d": 1}, "d": {}, "e": {"f": 1}, "f": {"e": 1},
             "g": {"a": 1}}
    assert strongly_connected(graph) == [["a", "b", "c"], ["e", "f"]]
    assert strongly_connected({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) == []


def test_relative_and_local_imports_are_resolved(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("from . import sibling\nfrom .. import __version__\nfrom ..core.errors import X\n"
                      "def f():\n    from ..store import Store\n    import spurious.report.html\n")
    known = {"spurious", "spurious.sub", "spurious.sub.sibling", "spurious.sub.mod", "spurious.core",
             "spurious.core.errors", "spurious.store", "spurious.report", "spurious.report.html"}
    found = imports_of("spurious.sub.mod", source, known)
    assert [t for t, _ in found] == ["spurious.sub.sibling", "spurious", "spurious.core.errors",
                                     "spurious.store", "spurious.report.html"]
    layers = read_layers("<!-- layers -->\n1. **low** — `spurious.core`: x.\n2. **top** — `spurious`, "
                         "`spurious.sub`: y.\n<!-- /layers -->")
    assert layer_of("spurious.core.errors", layers) == 0
    assert layer_of("spurious", layers) == 1 and layer_of("spurious.sub.mod", layers) == 1
    assert layer_of("spurious.store", layers) is None


def _imports_of(tree) -> list[tuple[str, int, list[str]]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, 0, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level, [alias.name for alias in node.names]))
    return out


def test_every_module_that_touches_jax_sets_float64_itself():
    """`import spurious` is lazy (the CLI must handle signals before JAX starts), so float64 cannot
    come from the package's __init__: each module that imports JAX imports core.setup first."""
    offenders = []
    for name, path in module_files().items():
        imports = _imports_of(ast.parse(path.read_text()))
        uses_jax = any(module == "jax" or module.startswith("jax.") for module, level, _ in imports if level == 0)
        sets_x64 = any(module.endswith("core.setup") or (module.endswith("core") and "setup" in names)
                       or (level == 1 and name.startswith("spurious.core") and "setup" in names)
                       for module, level, names in imports)
        if uses_jax and not sets_x64 and name != "spurious.core.setup":
            offenders.append(name)
    assert not offenders, f"modules that import JAX without spurious.core.setup: {offenders}"


def test_importing_the_command_line_does_not_start_jax():
    import subprocess
    import sys

    code = "import sys, spurious.cli; spurious.cli.build_parser(); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
