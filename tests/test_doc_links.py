"""Docs that point somewhere: every relative link in docs/ and the README resolves inside the
repository (anchors included), and no citation points at notes the repository does not hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(?<!\!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced blocks and inline code, where links are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for h in HEADING.findall(FENCE.sub("", page.read_text())):
        s = slug(h)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text()))


def test_the_slugs_are_githubs():
    assert slug("Edge cases") == "edge-cases"
    assert slug("`kmodemu boot`") == "kmodemu-boot"
    assert slug("Profile 3.9: what the pre-patch code did") == "profile-39-what-the-pre-patch-code-did"
    assert slug("The report and /proc/kmodemu/workload") == "the-report-and-prockmodemuworkload"


def test_the_link_finder_skips_code_and_images():
    assert LINK.findall(_prose("see [a](a.md) and `[b](b.md)` ![c](c.png)\n```\n[d](d.md)\n```\n")) == ["a.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    bad = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if REPO not in dest.parents and dest != REPO:
            bad.append(f"{target}: outside the repository")
        elif not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading '#{anchor}' in {dest.relative_to(REPO)}")
    assert bad == []


def test_there_are_links_to_check():
    assert sum(len(links(p)) for p in PAGES) > 20


CITED = ("docs", "kmodemu", "plugins", "tests", "scenarios", "benchmarks", "examples")


def test_no_citation_of_notes_outside_the_repository():
    """Cite Linux/kmod/Xen files and functions, or our own docs; never "§4.2" of private notes."""
    hits = []
    for top in CITED:
        for f in sorted((REPO / top).rglob("*")):
            if f.is_file() and f.suffix in (".md", ".py", ".scn", ".txt", ".toml") and f != Path(__file__):
                for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                    if "§" in line or "shared/reference" in line:
                        hits.append(f"{f.relative_to(REPO)}:{n}: {line.strip()}")
    assert hits == []
