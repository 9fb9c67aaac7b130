"""The house's layout: imports point one way (no cycles), eval/ holds pure functions that import
nothing from train/, methods/ do not import the engine, and the engine finds the methods in one
explicit table."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "zslab"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(mod: str, path: Path, mods: dict) -> set[str]:
    """zslab modules imported anywhere in ``path`` (functions included, TYPE_CHECKING blocks not)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    found = set()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            node.body = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod if is_pkg else mod.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for n in names:
            o = owner(n)
            if o and o != mod and o.startswith("zslab"):
                found.add(o)
    return found


@pytest.fixture(scope="module")
def graph():
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def _package(m: str) -> str:
    parts = m.split(".")
    return ".".join(parts[:2])


def test_no_import_cycles(graph):
    # a package importing its own submodules (zslab.methods -> zslab.methods.apn) is not a cycle
    # unless the submodule imports back into the package namespace
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in graph.get(m, ()):
            if state.get(n) == 1:
                cyc = stack[stack.index(n):]
                if not all(c == n or c.startswith(n + ".") or n.startswith(c + ".") for c in cyc):
                    cycles.append(cyc + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("lower,upper", [
    ("zslab.eval", ("zslab.train", "zslab.methods", "zslab.experiments", "zslab.viz", "zslab.cli")),
    ("zslab.methods", ("zslab.train", "zslab.experiments", "zslab.viz", "zslab.cli")),
    ("zslab.data", ("zslab.train", "zslab.methods", "zslab.eval", "zslab.experiments", "zslab.models")),
    ("zslab.config", ("zslab.data", "zslab.models", "zslab.train", "zslab.methods", "zslab.eval", "zslab.attacks")),
    ("zslab.attacks", ("zslab.train", "zslab.methods", "zslab.eval", "zslab.experiments")),
])
def test_imports_point_one_way(graph, lower, upper):
    bad = sorted(f"{m} -> {n}" for m, ns in graph.items() if m == lower or m.startswith(lower + ".")
                 for n in ns if any(n == u or n.startswith(u + ".") for u in upper))
    assert not bad, bad


def test_the_engine_finds_every_method_in_one_explicit_table():
    from zslab.config.schema import METHODS
    from zslab.methods import STRATEGIES
    from zslab.methods.base import Strategy

    assert set(STRATEGIES) == set(METHODS)
    assert all(issubclass(s, Strategy) for s in STRATEGIES.values())
    src = (PKG / "train" / "engine.py").read_text()
    assert "from zslab.methods import STRATEGIES" in src
