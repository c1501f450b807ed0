"""Structural checks of a self-contained HTML report (used by the tests).

Every element is closed in order, there is inline SVG, and nothing refers to
the network: no ``src``/``href`` to http(s), no CSS ``url(http…)`` or
``@import``. XML namespace declarations (``xmlns``) are names, not references.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
_EXTERNAL = re.compile(r"""(?:\b(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//)"""
                       r"""|url\(\s*["']?\s*(?:https?:)?//|@import""", re.I)


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            where = "line %d" % self.getpos()[0]
            self.problems.append(f"{where}: </{tag}> closes <{self.stack[-1] if self.stack else '-'}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()


def check_html(text: str) -> list[str]:
    """Problems with a report (empty when it is well formed and self-contained)."""
    parser = _Checker()
    parser.feed(text)
    parser.close()
    problems = list(parser.problems)
    if parser.stack:
        problems.append(f"unclosed elements: {parser.stack}")
    if not text.lstrip().lower().startswith("<!doctype html>"):
        problems.append("no <!DOCTYPE html>")
    if not parser.tags.get("svg"):
        problems.append("no inline <svg>")
    for m in _EXTERNAL.finditer(text):
        problems.append(f"external reference: {text[m.start():m.start() + 60]!r}")
    if parser.tags.get("script"):
        problems.append("a <script> element (the report needs none)")
    return problems
