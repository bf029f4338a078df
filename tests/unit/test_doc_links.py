"""Every link in the project's Markdown leads somewhere: a local file that exists, and a
heading anchor (``#…``) that the target page has, slugged as GitHub slugs headings.

A newcomer follows the README to docs/ and from page to page; a moved or renamed section must
not leave them at a dead end. Web addresses (``https:``, ``mailto:``) are not fetched.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", "var", "node_modules", ".git", ".hypothesis", ".pytest_cache"}
HTML_ANCHOR = re.compile(r"""<a\s[^>]*(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HTML_TARGET = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)

_parser = MarkdownIt("commonmark").enable("table")


def markdown_files(root: Path) -> list[Path]:
    """Every ``*.md`` under root, leaving out virtualenvs, local state and caches (never
    walked into: the embedded database's directory may not be readable)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in SKIP_DIRS]
        found.extend(Path(folder) / name for name in files if name.endswith(".md"))
    return sorted(found)


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading whose rendered text is ``text`` (github-slugger):
    lower case, every character that is not a letter, digit, mark, ``-``, ``_`` or a space
    removed, each space turned into ``-``."""
    kept = (
        char
        for char in text.lower()
        if char in "-_ " or unicodedata.category(char)[0] in ("L", "N", "M")
    )
    return "".join(kept).replace(" ", "-")


def _inline_text(token) -> str:
    """The rendered text of an inline token: link text, code without backticks, no markup."""
    return "".join(
        child.content for child in token.children or () if child.type in ("text", "code_inline")
    )


def _walk(tokens) -> Iterator:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def anchors(text: str) -> set[str]:
    """The anchors of a page: each heading's slug (``-1``, ``-2``… for repeats) and any
    ``<a id="…">`` or ``<a name="…">`` in its HTML."""
    tokens = _parser.parse(text)
    found: set[str] = set()
    seen: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            slug = github_slug(_inline_text(tokens[index + 1]))
            if slug in seen:
                seen[slug] += 1
                found.add(f"{slug}-{seen[slug]}")
            else:
                seen[slug] = 0
                found.add(slug)
        elif token.type in ("html_block", "html_inline"):
            found.update(HTML_ANCHOR.findall(token.content))
    for token in _walk(tokens):
        if token.type == "html_inline":
            found.update(HTML_ANCHOR.findall(token.content))
    return found


def link_targets(text: str) -> list[str]:
    """Every link and image target of a page (code blocks and code spans are not links)."""
    targets = []
    for token in _walk(_parser.parse(text)):
        if token.type == "link_open":
            targets.append(token.attrGet("href"))
        elif token.type == "image":
            targets.append(token.attrGet("src"))
        elif token.type in ("html_block", "html_inline"):
            targets.extend(HTML_TARGET.findall(token.content))
    return [target for target in targets if target]


def broken_links(root: Path) -> list[str]:
    """``page: target (why)`` for every local link under root that leads nowhere."""
    problems = []
    anchor_cache: dict[Path, set[str]] = {}

    def anchors_of(path: Path) -> set[str]:
        if path not in anchor_cache:
            anchor_cache[path] = anchors(path.read_text(encoding="utf-8"))
        return anchor_cache[path]

    for page in markdown_files(root):
        name = page.relative_to(root).as_posix()
        for target in link_targets(page.read_text(encoding="utf-8")):
            parts = urlsplit(target)
            if parts.scheme or parts.netloc:
                continue  # a web address, not a file of this repository
            path_part = unquote(parts.path)
            if path_part.startswith("/"):
                # GitHub resolves a leading slash against the repository's root.
                resolved = (root / path_part.lstrip("/")).resolve()
            elif path_part:
                resolved = (page.parent / path_part).resolve()
            else:
                resolved = page
            if not resolved.is_relative_to(root.resolve()):
                problems.append(f"{name}: {target} (outside the repository)")
                continue
            if not resolved.exists():
                problems.append(f"{name}: {target} (no such file)")
                continue
            fragment = unquote(parts.fragment)
            if fragment and resolved.suffix == ".md" and fragment not in anchors_of(resolved):
                problems.append(f"{name}: {target} (no heading with that anchor)")
    return problems


def test_every_local_link_and_anchor_in_the_markdown_exists():
    pages = {path.relative_to(ROOT).as_posix() for path in markdown_files(ROOT)}
    assert {"README.md", "CONTRIBUTING.md", "docs/index.md"} <= pages
    assert broken_links(ROOT) == []


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Where each rule lives", "where-each-rule-lives"),
        (
            "3. Timepoints and windows (`outcomes/followups/schedule.py`)",
            "3-timepoints-and-windows-outcomesfollowupsschedulepy",
        ),
        (
            "9a. Data quality (`registry/validation.py`, `registry/warnings.py`)",
            "9a-data-quality-registryvalidationpy-registrywarningspy",
        ),
        ("Questionnaire links: the token lifecycle", "questionnaire-links-the-token-lifecycle"),
        ("Import and export — CSV & *SPSS*", "import-and-export--csv--spss"),
        (
            "[The report](reports.md) in Danish: Kohorterapport",
            "the-report-in-danish-kohorterapport",
        ),
        ("`make_*` helpers", "make_-helpers"),
    ],
)
def test_headings_are_slugged_as_github_slugs_them(heading, slug):
    assert anchors(f"# {heading}\n") == {slug}


def test_repeated_headings_get_numbered_anchors():
    assert anchors("# Tests\n\n## Tests\n\n### Tests\n") == {"tests", "tests-1", "tests-2"}


def test_the_checker_names_a_missing_file_a_missing_anchor_and_a_way_out(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Front door\n\n"
        "[guide](docs/guide.md#entering-a-case) [gone](docs/gone.md) "
        "[wrong](docs/guide.md#entering-cases) [self](#front-door) [nowhere](#back-door)\n\n"
        "![shot](docs/images/record.png) [web](https://example.org/x.md#y)\n\n"
        "```\n[not a link](missing.md)\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## Entering a case\n\n[up](../README.md#front-door) [out](../../style.md)\n",
        encoding="utf-8",
    )
    assert broken_links(tmp_path) == [
        "README.md: docs/gone.md (no such file)",
        "README.md: docs/guide.md#entering-cases (no heading with that anchor)",
        "README.md: #back-door (no heading with that anchor)",
        "README.md: docs/images/record.png (no such file)",
        "docs/guide.md: ../../style.md (outside the repository)",
    ]
