"""The package's layers: a module imports only from layers below its own (or its own package).

errors < layers < core < {zoo, formats, compiler} < train < {publish, apps} < cli < the package
root. ``train`` sits above ``formats`` because training writes checkpoints as model files. Lazy
imports inside functions count too: they are cycles all the same, only deferred.
"""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "edgecnn"

# quant: TFLite's integer arithmetic, which the integer layer kinds compute with
RANK = {"errors": 0, "_version": 0, "quant": 0.5, "layers": 1, "core": 2, "zoo": 3, "formats": 3,
        "compiler": 3, "train": 4, "publish": 5, "apps": 5, "cli": 6}
ROOT_FILES = {"__init__.py", "__main__.py"}  # the package root may import everything


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.relative_to(PKG).as_posix() not in ROOT_FILES)


def _dotted(path: Path) -> list[str]:
    """src/edgecnn/core/graph.py → ['edgecnn', 'core', 'graph']; a package's __init__ → its name."""
    parts = ["edgecnn", *path.relative_to(PKG).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(source: str, here: list[str], is_package: bool) -> list[tuple[int, list[str]]]:
    """(line, absolute dotted target) of every edgecnn import in ``source``, lazy ones included."""
    package = here if is_package else here[:-1]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                base = base + (node.module.split(".") if node.module else [])
            else:
                base = node.module.split(".")
            # `from .. import zoo` imports the module edgecnn.zoo, not the root's namespace
            out += [(node.lineno, base + [a.name] if len(base) == 1 else base)
                    for a in node.names]
    return [(line, t) for line, t in out if t[0] == "edgecnn"]


def _violations(source: str, here: list[str], is_package: bool) -> list[str]:
    own = here[1]
    bad = []
    for line, target in _imports(source, here, is_package):
        part = target[1]
        if part not in RANK:
            bad.append(f"line {line}: imports from the package root ({'.'.join(target)})")
        elif part != own and RANK[part] >= RANK[own]:
            bad.append(f"line {line}: {own} (layer {RANK[own]}) imports {'.'.join(target)} "
                       f"(layer {RANK[part]})")
    return bad


def test_every_top_level_module_has_a_rank():
    parts = {_dotted(p)[1] for p in _modules()}
    assert parts <= RANK.keys(), f"give these a place in the layers: {parts - RANK.keys()}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PKG).as_posix())
def test_imports_go_down_the_layers(path):
    bad = _violations(path.read_text(encoding="utf-8"), _dotted(path), path.name == "__init__.py")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_lazy_relative_and_sibling_imports():
    here = ["edgecnn", "core", "probe"]
    src = ("from .graph import Graph\n"
           "def f():\n    from .. import compile\n    from ..compiler import api\n")
    bad = _violations(src, here, False)
    assert len(bad) == 2 and "line 3: imports from the package root" in bad[0]
    assert "core (layer 2) imports edgecnn.compiler (layer 3)" in bad[1]
    sibling = _violations("from ..zoo import get\n", ["edgecnn", "formats", "probe"], False)
    assert sibling == ["line 1: formats (layer 3) imports edgecnn.zoo (layer 3)"]
    assert _violations("from ..core.graph import Graph\n", ["edgecnn", "zoo", "x"], False) == []
