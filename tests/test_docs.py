"""The documentation holds together: a short README, relative links that resolve inside the repository, and every
docs page reachable from the docs index."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1].resolve()
DOCS = ROOT / "docs"
README_LIMIT = 10_240  # bytes: the README is the user's page; the rest lives in docs/

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)


def markdown_files() -> list[Path]:
    files = [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "results" / "README.md",
        ROOT / "benchmarks" / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
    ]
    return [f for f in files if f.exists()]


def prose(text: str) -> str:
    """The text without fenced or indented code blocks and code spans, where `[...](...)` is code, not a link."""
    text = FENCE.sub("", text)
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("    ", "\t")))
    return CODE_SPAN.sub("", text)


def relative_links(text: str) -> list[str]:
    """Link targets that name a file in the repository: no URL scheme, no pure #anchor; the #anchor stripped."""
    targets = []
    for target in LINK.findall(prose(text)):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http(s), mailto: not files; an anchor in the same page
        targets.append(target.split("#", 1)[0])
    return targets


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Relative link targets of `path` that name no existing file or directory inside `root`."""
    broken = []
    for target in relative_links(path.read_text(encoding="utf-8")):
        resolved = (path.parent / target).resolve()
        if not resolved.exists() or not resolved.is_relative_to(root):
            broken.append(target)
    return broken


def test_readme_is_at_most_10_kb():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail to docs/ (limit {README_LIMIT})"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(path: Path):
    assert broken_links(path) == []


def test_the_link_check_finds_broken_links(tmp_path: Path):
    repo = tmp_path.resolve() / "repo"
    repo.mkdir()
    (repo / "here.md").write_text("x")
    (repo.parent / "outside.md").write_text("x")
    page = repo / "page.md"
    page.write_text(
        "[ok](here.md#part) [gone](missing.md) ![img](gone.png) [web](https://example.org) [a](#top)\n"
        "`[code](nothing.md)`\n\n    [indented](nothing.md)\n\n```\n[fenced](nothing.md)\n```\n"
        "[outside](../outside.md)\n"
    )
    assert broken_links(page, root=repo) == ["missing.md", "gone.png", "../outside.md"]


def linked_pages(path: Path) -> set[Path]:
    return {(path.parent / t).resolve() for t in relative_links(path.read_text(encoding="utf-8")) if t}


def test_every_docs_page_is_reachable_from_the_docs_index():
    index = DOCS / "README.md"
    seen, todo = {index}, [index]
    while todo:
        page = todo.pop()
        for target in linked_pages(page):
            if target.suffix == ".md" and target.is_file() and target not in seen and DOCS in target.parents:
                seen.add(target)
                todo.append(target)
    pages = {p.resolve() for p in DOCS.rglob("*.md")}
    assert sorted(str(p.relative_to(ROOT)) for p in pages - seen) == []


def test_every_top_level_docs_page_is_listed_in_the_index():
    index = linked_pages(DOCS / "README.md")
    pages = {p.resolve() for p in DOCS.glob("*.md") if p.name != "README.md"}
    assert sorted(p.name for p in pages - index) == []


def test_readme_links_the_docs_index():
    assert DOCS / "README.md" in linked_pages(ROOT / "README.md")
