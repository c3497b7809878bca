"""Product code does not import the test-model builder (``fastvid_cli.tiny``, ``fastvid_cli.tiny_config``).

Only the ``tiny-model`` command and the loader of tiny models may; checked on the source with ``ast``,
so an import at module level or inside any function is found.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
BUILDER = {"fastvid_cli.tiny", "fastvid_cli.tiny_config", "fastvid_cli.tiny_models"}
ALLOWED = {
    ("fastvid_cli.cli", "tiny_model"),  # the tiny-model command
    ("fastvid_cli.cli", "_tiny_from_config"),  # its --config path
    ("fastvid_cli.models", "tiny_model_dir"),  # the loader of tiny models
}
"""(module, function) pairs that may import the builder; the builder's own modules may import each other."""


def module_name(path: Path) -> tuple[str, bool]:
    """Dotted name of a source file, and whether it is a package's ``__init__``."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    package = parts[-1] == "__init__"
    if package:
        parts = parts[:-1]
    return ".".join(parts), package


def imported(node: ast.AST, module: str, package: bool) -> list[str]:
    """Modules an import statement names (relative ones resolved), each ``from`` name also as a submodule."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def builder_imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, enclosing function or None, line) of each import of the builder in one file."""
    module, package = module_name(path)
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if any(name in BUILDER for name in imported(child, module, package)):
                found.append((module, function, child.lineno))
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), None)
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        for module, function, line in builder_imports(path):
            if module in BUILDER or (module, function) in ALLOWED:
                continue
            out.append(f"{path.relative_to(SRC)}:{line} ({function or 'module level'}) imports the test-model builder")
    return out


def test_no_product_module_imports_the_test_model_builder():
    assert violations() == []


def test_the_rule_is_checked_where_it_is_allowed():
    """The walk finds the allowed imports too (so a broken walk cannot pass by finding nothing)."""
    found = {(m, f) for path in SRC.rglob("*.py") for m, f, _ in builder_imports(path)}
    assert ALLOWED <= found


def test_the_walk_catches_a_relative_import(tmp_path, monkeypatch):
    package = tmp_path / "fastvid_cli" / "models"
    package.mkdir(parents=True)
    (package / "extra.py").write_text("def f():\n    from ..tiny import TINY_NOTE\n")
    (package / "__init__.py").write_text("from .. import tiny\n")
    (tmp_path / "fastvid_cli" / "report.py").write_text("import fastvid_cli.tiny_config\n")
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    assert len(violations()) == 3
