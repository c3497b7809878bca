"""The shape of src/fastvid_cli: modules a reader can hold in mind, and family names only in models/.

- No module of ``src/`` is over :data:`MAX_LINES` lines.
- At most :data:`MAX_FAMILY_LINES` code lines outside ``models/`` name a model family: a line counts when
  an identifier or a string literal without spaces on it (a class name, a ``model_type``, a repo id, an
  architecture) contains ``llava`` or ``qwen``; comments, docstrings and prose (help text, messages) do
  not. ``vllm_plugin/`` is counted apart: its classes subclass vLLM's own per-family classes
  (docs/vllm.md), so they name them by nature.
- What a sixth family needs outside ``models/``: nothing (docs/python-api.md, "Adding a family"); the
  shipped families' tiny models, aliases and published files all come from ``models/``.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "fastvid_cli"
MAX_LINES = 700
MAX_FAMILY_LINES = 10
FAMILY = re.compile(r"llava|qwen", re.IGNORECASE)


def family_lines(source: str) -> list[int]:
    """Lines of ``source`` whose code names a model family (see the module docstring)."""
    hits = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and FAMILY.search(token.string):
            hits.add(token.start[0])
        elif token.type == tokenize.STRING and not token.string.lstrip("rbuRBU").startswith(('"""', "'''")):
            try:
                value = ast.literal_eval(token.string)
            except ValueError:  # an f-string: prose with fields
                continue
            if isinstance(value, str) and FAMILY.search(value) and not any(c.isspace() for c in value):
                hits.add(token.start[0])
    return sorted(hits)


def family_lines_outside_models(skip: tuple[str, ...] = ("models", "vllm_plugin")) -> dict[str, list[int]]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] in skip:
            continue
        lines = family_lines(path.read_text())
        if lines:
            found[str(relative)] = lines
    return found


def test_no_module_is_over_700_lines():
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_family_names_stay_in_models():
    found = family_lines_outside_models()
    assert sum(len(lines) for lines in found.values()) <= MAX_FAMILY_LINES, found


def test_the_count_sees_names_and_not_prose():
    source = '''"""LLaVA-OneVision and Qwen2.5-VL in a docstring."""
from transformers import Qwen2Config  # a comment on LLaVA
DEFAULT = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
HELP = "frames [default: 32 LLaVA-OneVision, 64 LLaVA-Video]"
TYPES = ("qwen3_5",
         "gpt2")
def f():
    """Qwen3-VL."""
    return f"{DEFAULT} for Qwen"
'''
    assert family_lines(source) == [2, 3, 5]


def test_the_cli_default_model_is_the_models_one():
    """The one family-naming line of cli/ (read at import, so ``fastvid --help`` need not load models/) agrees."""
    from fastvid_cli.cli.app import DEFAULT_MODEL
    from fastvid_cli.models import DEFAULT_MODEL as MODELS_DEFAULT

    assert DEFAULT_MODEL == MODELS_DEFAULT


def test_the_python_api_comes_from_the_package_lazily():
    """``from fastvid_cli import ask, ...`` works for every name of ``fastvid_cli.API`` (docs/python-api.md
    imports from there), and ``import fastvid_cli`` alone loads neither torch nor the modules behind them."""
    import subprocess
    import sys

    code = (
        "import sys, fastvid_cli\n"
        "assert 'torch' not in sys.modules and 'fastvid_cli.engine.pipeline' not in sys.modules\n"
        "for name, module in fastvid_cli.API.items():\n"
        "    value = getattr(fastvid_cli, name)\n"
        "    assert value is getattr(sys.modules[module], name), name\n"
        "assert sorted(fastvid_cli.__all__) == sorted([*fastvid_cli.API, 'API', '__version__'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
