"""The README and the docs pages: every relative link resolves, every ``#anchor`` names a heading, the
README stays short, every docs page is linked from it and links back, and CI's test command is where
``.ci/run`` looks for it.

Anchors are GitHub's: a heading's text (Markdown links reduced to their text, backticks and HTML tags
dropped), lowercased, every character that is not a letter, digit, space, ``-`` or ``_`` dropped, spaces
turned into ``-``; a repeated heading gets ``-1``, ``-2``... Links and headings inside fenced code blocks
do not count.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 200


def checked_pages() -> list[Path]:
    """The Markdown pages whose links are checked."""
    return [README, *sorted(DOCS.glob("*.md")), ROOT / "benchmarks" / "README.md"]


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
LINK = re.compile(r"(?<!\\)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
"""``[text](target)`` and ``![alt](target)``, with an optional title; one level of brackets in the text."""
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
"""A target with a scheme (http:, https:, mailto: ...) or protocol-relative: not checked here."""


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) <= {fence[0]}:
                fence = None
            continue
        out.append((number, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text (without the duplicate suffix)."""
    text = LINK.sub(lambda m: m.group(1), heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page has: its headings' slugs (repeated ones suffixed as GitHub does) and HTML anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link outside code: fenced blocks skipped, and code spans
    that show link syntax (``[a](b)`` inside backticks) blanked; other code spans may be link text."""
    out = []
    for number, line in prose_lines(text):
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)) if "](" in m.group(2) else m.group(0), line)
        out.extend((number, m.group(2)) for m in LINK.finditer(line))
    return out


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the relative links of ``page``: a file that does not exist, or an anchor that
    names no heading of its target. External links (http, https, mailto ...) are not checked."""
    problems = []
    text = page.read_text(encoding="utf-8")
    name = page.relative_to(root) if page.is_relative_to(root) else page
    cache: dict[Path, set[str]] = {}
    for number, target in links(text):
        if not target or EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        where = f"{name}:{number}: ({target})"
        if not resolved.exists():
            problems.append(f"{where} the file {path_part} does not exist")
            continue
        if not anchor:
            continue
        if resolved.is_dir() or resolved.suffix.lower() != ".md":
            problems.append(f"{where} an anchor into {path_part}, which is not a Markdown page")
            continue
        if resolved not in cache:
            cache[resolved] = anchors(resolved.read_text(encoding="utf-8"))
        if anchor not in cache[resolved]:
            problems.append(f"{where} no heading of {path_part or name} has the anchor #{anchor}")
    return problems


def test_every_relative_link_and_anchor_resolves():
    problems = [problem for page in checked_pages() for problem in broken_links(page)]
    assert problems == []


def test_the_check_reports_a_broken_link_and_a_broken_anchor(tmp_path):
    """Fails by construction: a made-up page with one broken link and one broken anchor gets both
    reported, and nothing else (its good link, good anchors and external link pass)."""
    (tmp_path / "other.md").write_text("# Other page\n\n## `fastvid ask`: the options\n\n## Qwen3.5\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n"
        "[good](other.md#fastvid-ask-the-options) and [also good](other.md#qwen35) and [self](#a-page)\n"
        "[gone](missing.md) and [bad anchor](other.md#no-such-heading) and [web](https://example.com/x.md)\n\n"
        "```bash\n[not a link](nowhere.md)\n```\n"
        "`[shown as code](nowhere.md)`\n",
        encoding="utf-8",
    )
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 2, problems
    assert "missing.md does not exist" in problems[0]
    assert "#no-such-heading" in problems[1]


def test_slugs_are_githubs():
    assert slug("`fastvid batch`: scripting over folders of videos") == "fastvid-batch-scripting-over-folders-of-videos"
    assert slug("GPU: every figure in one device call (`gpu_suite.py`)") == "gpu-every-figure-in-one-device-call-gpu_suitepy"
    assert slug("The paper's runs, per family") == "the-papers-runs-per-family"
    assert slug("Qwen3.5") == "qwen35"
    assert anchors("# A\n## Notes\n## Notes\n```\n# not a heading\n```\n") == {"a", "notes", "notes-1"}


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")  # as `wc -l` counts
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move a topic to docs/"


def test_every_docs_page_is_linked_from_the_readme_and_links_back():
    readme_targets = {
        (README.parent / target.partition("#")[0]).resolve() for _, target in links(README.read_text(encoding="utf-8"))
    }
    for page in sorted(DOCS.glob("*.md")):
        assert page.resolve() in readme_targets, f"docs/{page.name} is not linked from README.md"
        back = {(page.parent / target.partition("#")[0]).resolve() for _, target in links(page.read_text(encoding="utf-8"))}
        assert README.resolve() in back, f"docs/{page.name} does not link back to README.md"


def test_the_test_command_marker_is_followed_by_a_bash_block():
    """``.ci/run`` runs the first bash block after the ``<!-- test-command`` marker: it must be the next thing."""
    lines = README.read_text(encoding="utf-8").splitlines()
    markers = [i for i, line in enumerate(lines) if line.startswith("<!-- test-command")]
    assert len(markers) == 1, "README.md needs exactly one <!-- test-command marker"
    rest = lines[markers[0] + 1 :]
    assert rest and rest[0] == "```bash", "the line after the <!-- test-command marker must open a ```bash block"
    end = rest.index("```", 1)
    command = " ".join(line for line in rest[1:end] if line.strip())
    assert "pytest" in command, f"the test command runs no tests: {command!r}"


# --- what the docs say about installing matches pyproject.toml ----------------------------------

PYPI_RELEASE: str | None = None
"""The version of fastvid-cli on PyPI: None until the first release (then the docs may offer ``pip install fastvid-cli``)."""
PYPI_INSTALL = re.compile(r"pip install\s+[\"']?fastvid-cli\b")


def project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_no_page_offers_a_pypi_install_before_a_release():
    if PYPI_RELEASE is not None:
        pytest.skip("fastvid-cli is on PyPI")
    sources = [*checked_pages(), *sorted((ROOT / "src").rglob("*.py"))]
    offers = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PYPI_INSTALL.search(line)
    ]
    assert offers == []
    assert PYPI_INSTALL.search("pip install fastvid-cli") and PYPI_INSTALL.search("pip install 'fastvid-cli[flash]'")


def test_the_linear_extra_is_what_the_docs_say_it_brings():
    """docs/models.md's install line of the `linear` extra names its packages (after "checkout:"): pyproject's.
    causal-conv1d, built apart, is not among them."""
    linear = requirement_names(project()["optional-dependencies"]["linear"])
    line = next(line for line in (DOCS / "models.md").read_text(encoding="utf-8").splitlines() if '".[linear]"' in line)
    named = {name.strip().lower() for name in line.partition("checkout:")[2].split(",")}
    assert named == linear
    assert "causal-conv1d" not in linear
    assert "pip install causal-conv1d --no-build-isolation" in (DOCS / "models.md").read_text(encoding="utf-8")


def test_the_transformers_version_is_the_same_everywhere():
    """README's "transformers X" and pyproject's comment on requires-python name the lowest transformers the
    dependencies allow."""
    lowest = next(re.search(r">=([\d.]+)", r).group(1) for r in project()["dependencies"] if r.startswith("transformers"))
    readme = re.findall(r"transformers (\d+\.\d+)", README.read_text(encoding="utf-8"))
    comment = next(
        line for line in (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines() if "requires-python" in line
    )
    assert readme and set(readme) == {lowest}
    assert re.findall(r"transformers (\d+\.\d+)", comment) == [lowest]


def test_commands_page_lists_the_commands_in_the_order_help_does():
    """docs/commands.md's contents and ``fastvid --help`` name the same commands, in the same order."""
    import typer

    from fastvid_cli.cli import app

    listed = re.findall(r"^- \[`fastvid ([a-z-]+)`\]", (DOCS / "commands.md").read_text(), flags=re.MULTILINE)
    group = typer.main.get_command(app)
    assert listed == list(group.list_commands(typer.Context(group)))  # type: ignore[attr-defined]
