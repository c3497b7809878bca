"""Rules on the imports of ``src/``, checked on the source with ``ast`` (module level and inside any function).

- Product code does not import the tiny-model builder (the ``fastvid_cli.tiny`` package): only the
  ``tiny-model`` command and the loader of tiny models may.
- No import circle: the graph of the package's modules, every import counted (module level, inside
  functions, under ``TYPE_CHECKING``), has no cycle. What two modules both need lives in the lower one.
- A function-level import of the package is there only to defer it (a fast ``fastvid --help``, a light
  plugin manifest, the builder on demand), and says so: a ``# deferred`` comment above its block.
"""

from __future__ import annotations

import ast
import itertools
import textwrap
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
BUILDER = "fastvid_cli.tiny"
"""The tiny-model builder's package: it and its modules."""
ALLOWED = {
    ("fastvid_cli.cli.tiny_model", "tiny_model"),  # the tiny-model command
    ("fastvid_cli.cli.tiny_model", "_tiny_from_config"),  # the path both its --arch and --config take
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


def in_builder(module: str) -> bool:
    return module == BUILDER or module.startswith(BUILDER + ".")


def builder_imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, enclosing function or None, line) of each import of the builder in one file."""
    module, package = module_name(path)
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if any(in_builder(name) for name in imported(child, module, package)):
                found.append((module, function, child.lineno))
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), None)
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        for module, function, line in builder_imports(path):
            if in_builder(module) or (module, function) in ALLOWED:
                continue
            out.append(f"{path.relative_to(SRC)}:{line} ({function or 'module level'}) imports the tiny-model builder")
    return out


def test_no_product_module_imports_the_tiny_model_builder():
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
    (tmp_path / "fastvid_cli" / "report.py").write_text("import fastvid_cli.tiny.plan\n")
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    assert len(violations()) == 3


# --- no import circle ---------------------------------------------------------------------------


def modules(src: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's ``__init__``) of every module under ``src``."""
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


def import_targets(node: ast.AST, module: str, package: bool, known: set[str]) -> list[str]:
    """The modules of ``known`` one import statement loads, relative ones resolved.

    ``import a.b`` loads ``a.b``; ``from p import x`` loads the submodule ``p.x`` when there is one,
    else ``p`` itself (the parent packages Python runs first are not counted: every submodule would
    otherwise close a circle with a package that re-exports it).
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    found = []
    for alias in node.names:
        name = f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target
        if name in known and name not in found:
            found.append(name)
    return found


def import_statements(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str | None, int]]:
    """Every import statement of a parsed module, with its enclosing function (None at module level) and the
    line of the first statement of its run of consecutive imports."""
    stack: list[tuple[ast.AST, str | None]] = [(tree, None)]
    while stack:
        node, function = stack.pop()
        inner = node.name if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
        for _, value in ast.iter_fields(node):
            if isinstance(value, list) and value and all(isinstance(v, ast.stmt) for v in value):
                first = None
                for statement in value:
                    if isinstance(statement, (ast.Import, ast.ImportFrom)):
                        first = first or statement.lineno
                        yield statement, inner, first
                    else:
                        first = None
            children = value if isinstance(value, list) else [value]
            stack.extend((child, inner) for child in children if isinstance(child, ast.AST))


def import_graph(src: Path) -> dict[str, dict[str, tuple[str | None, int]]]:
    """Module -> {imported module: (enclosing function or None, line of the first such import)}."""
    known = modules(src)
    graph: dict[str, dict[str, tuple[str | None, int]]] = {}
    for module, (path, package) in known.items():
        edges: dict[str, tuple[str | None, int]] = {}
        for statement, function, _ in import_statements(ast.parse(path.read_text(), str(path))):
            for target in import_targets(statement, module, package, set(known)):
                if target != module and (target not in edges or statement.lineno < edges[target][1]):
                    edges[target] = (function, statement.lineno)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, tuple[str | None, int]]]) -> list[list[str]]:
    """One cycle (a list of modules, the first repeated at the end) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    found = []
    for group in groups:  # walk inside the group from its first module until a module repeats
        path = [group[0]]
        while path.count(path[-1]) == 1:
            path.append(next(w for w in sorted(graph[path[-1]]) if w in group))
        found.append(path[path.index(path[-1]) :])
    return found


def describe_cycle(graph: dict[str, dict[str, tuple[str | None, int]]], cycle: list[str]) -> str:
    steps = []
    for a, b in itertools.pairwise(cycle):
        function, line = graph[a][b]
        steps.append(f"{a}:{line} ({function or 'module level'}) imports {b}")
    return " -> ".join(steps)


def test_no_import_circle_in_src():
    graph = import_graph(SRC)
    assert [describe_cycle(graph, cycle) for cycle in cycles(graph)] == []


def test_the_graph_holds_function_level_and_relative_imports():
    """The walk finds imports inside functions and relative ones (so a broken walk cannot pass by finding nothing)."""
    graph = import_graph(SRC)
    assert graph["fastvid_cli.cli.ask"]["fastvid_cli.engine.pipeline"][0] == "ask"  # inside a function
    assert graph["fastvid_cli.models.geometry"]["fastvid_cli.models.registry"][0] is None  # at module level
    assert "fastvid_cli.models" in graph["fastvid_cli.models.geometry"]  # ``from . import ALIASES``
    assert "fastvid_cli.models.base" in graph["fastvid_cli.models.registry"]  # under TYPE_CHECKING
    assert sum(len(edges) for edges in graph.values()) > 150


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_made_up_circle_is_caught(tmp_path):
    """pkg.a imports pkg.sub.b at module level; pkg.sub.b imports pkg.a back inside a function, relatively."""
    src = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from .sub.b import helper\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/b.py": "def helper():\n    from ..a import helper as again\n    return again\n",
            "pkg/c.py": "from . import a\nimport pkg.sub\n",  # into the circle, not part of it
        },
    )
    graph = import_graph(src)
    found = cycles(graph)
    assert found == [["pkg.a", "pkg.sub.b", "pkg.a"]]
    assert describe_cycle(graph, found[0]) == ("pkg.a:1 (module level) imports pkg.sub.b -> pkg.sub.b:2 (helper) imports pkg.a")
    (src / "pkg" / "sub" / "b.py").write_text("def helper():\n    return 1\n")  # the circle broken: none found
    assert cycles(import_graph(src)) == []


def test_a_circle_through_a_package_init_and_type_checking_is_caught(tmp_path):
    src = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from .low import x\n",
            "pkg/low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import x\nx = 1\n",
        },
    )
    assert cycles(import_graph(src)) == [["pkg", "pkg.low", "pkg"]]


# --- function-level imports say why they are deferred -------------------------------------------


def undeclared_deferrals(src: Path) -> list[str]:
    """Function-level imports of the package not under a ``# deferred`` comment (above their run of imports)."""
    known = modules(src)
    out = []
    for module, (path, package) in known.items():
        lines = path.read_text().splitlines()
        for statement, function, first in import_statements(ast.parse("\n".join(lines), str(path))):
            targets = import_targets(statement, module, package, set(known))
            said = "# deferred" in lines[statement.lineno - 1] or lines[first - 2].strip().startswith("# deferred")
            if function is not None and targets and not said:
                out.append(
                    f"{path.relative_to(src)}:{statement.lineno} imports {', '.join(targets)} inside a function "
                    "without a `# deferred` comment saying why"
                )
    return sorted(out)


def test_every_function_level_import_of_the_package_says_it_is_deferred():
    assert undeclared_deferrals(SRC) == []


def test_an_undeclared_deferral_is_caught(tmp_path):
    src = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "x = 1\n",
            "pkg/b.py": """\
            import json


            def said():
                # deferred: a reason
                import json
                from .a import x
                return x


            def unsaid():
                if True:
                    from . import a
                return a
            """,
        },
    )
    assert undeclared_deferrals(src) == ["pkg/b.py:13 imports pkg.a inside a function without a `# deferred` comment saying why"]


# --- decord only through video.import_decord ----------------------------------------------------


def decord_imports(src: Path) -> list[str]:
    """``import decord`` statements of the package outside ``video.import_decord`` (module level or any function)."""
    found = []
    for module, (path, package) in modules(src).items():
        for statement, function, _ in import_statements(ast.parse(path.read_text(), str(path))):
            names = imported(statement, module, package)
            direct = any(n == "decord" or n.startswith("decord.") for n in names)
            if direct and (module, function) != ("fastvid_cli.video", "import_decord"):
                found.append(f"{path.relative_to(src)}:{statement.lineno} ({function or 'module level'})")
    return found


def test_decord_is_imported_only_through_import_decord():
    """decord2's import dlopens every NVIDIA pip library (NVBLAS among them); video.import_decord hides them."""
    assert decord_imports(SRC) == []


def test_a_direct_decord_import_is_caught(tmp_path):
    src = write_package(
        tmp_path,
        {
            "fastvid_cli/__init__.py": "",
            "fastvid_cli/video.py": "def import_decord():\n    import decord\n    import decord.logging\n",
            "fastvid_cli/output/show.py": "def f():\n    import decord\n",
        },
    )
    assert decord_imports(src) == ["fastvid_cli/output/show.py:2 (f)"]


# --- layers: the folders of src/fastvid_cli and what each may import ----------------------------

LAYERS = [
    {"fastvid_cli"},  # the modules beside the folders: errors, budget, streams, video, flops
    {"fastvid_cli.pruning"},
    {"fastvid_cli.models"},
    {"fastvid_cli.engine", "fastvid_cli.tiny"},
    {"fastvid_cli.bench"},
    {"fastvid_cli.output"},
    {"fastvid_cli.cli", "fastvid_cli.lmms_eval_plugin", "fastvid_cli.vllm_plugin"},
]
"""The package's folders, lowest first (docs/development.md's layout): a module imports only from its own
layer or lower ones. ``fastvid_cli/__init__`` (the lazy API) and ``__main__`` sit on top."""
UPWARD = {
    ("fastvid_cli.models", "fastvid_cli.tiny"),  # the loader of tiny models builds one on first use (deferred)
}
"""(importer, imported) pairs allowed to go up a layer."""


def folder(module: str) -> str:
    """The folder (subpackage) a module sits in, or ``fastvid_cli`` for the modules beside the folders."""
    parts = module.split(".")
    is_package = (SRC / Path(*parts) / "__init__.py").is_file()
    return ".".join(parts[:2]) if len(parts) > 2 or (is_package and len(parts) == 2) else "fastvid_cli"


def layer(module: str) -> int | None:
    name = folder(module)
    return next((i for i, group in enumerate(LAYERS) if name in group), None)


def upward_imports(graph) -> list[str]:
    found = []
    for module, edges in graph.items():
        if module in ("fastvid_cli", "fastvid_cli.__main__"):
            continue
        for target, (function, line) in edges.items():
            if target == "fastvid_cli":  # the version string
                continue
            low, high = layer(module), layer(target)
            if low is not None and high is not None and high > low and (folder(module), folder(target)) not in UPWARD:
                found.append(f"{module}:{line} ({function or 'module level'}) imports {target}, a higher layer")
    return found


def test_every_folder_is_a_layer():
    """Each folder of the package is in :data:`LAYERS`: a new one must say where it sits."""
    folders = {folder(module) for module in modules(SRC)}
    assert folders == set().union(*LAYERS)


def test_no_module_imports_a_higher_layer():
    assert upward_imports(import_graph(SRC)) == []


def test_the_layer_rule_catches_an_upward_import():
    graph = import_graph(SRC)
    graph["fastvid_cli.pruning.fastvid"] = dict(graph["fastvid_cli.pruning.fastvid"]) | {"fastvid_cli.engine.pipeline": (None, 1)}
    assert upward_imports(graph) == [
        "fastvid_cli.pruning.fastvid:1 (module level) imports fastvid_cli.engine.pipeline, a higher layer"
    ]
