"""Charts as inline SVG (pygal), stripped of everything that would reach the network.

pygal links its tooltip script from a CDN by default (``js``), adds an inline
script for it and signs its output with URL comments; all three go, so the SVG
is self-contained and static.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
_UUID_ID = re.compile(r"chart-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


DEFAULT_COLORS = ("#888888", "#1f77b4", "#ff7f0e", "#d62728", "#2ca02c")


@dataclass(frozen=True)
class Series:
    """One line or set of bars. A dashed, thinner line stays visible on top of an
    identical solid one (two runs with the same figures)."""

    name: str
    values: list
    color: str = ""
    dashed: bool = False


def _style(colors):
    from pygal.style import Style

    return Style(background="white", plot_background="white", font_family="sans-serif",
                 colors=tuple(colors) or DEFAULT_COLORS)


def _config(title: str, y_title: str, colors=(), **extra) -> dict:
    return dict(title=title, y_title=y_title, js=[], disable_xml_declaration=True,
                style=_style(colors), width=760, height=360, show_dots=True, dots_size=2,
                legend_at_bottom=True, truncate_legend=-1, print_values=False,
                explicit_size=True, **extra)


def _svg(chart, title: str, css: str = "") -> str:
    """Static, self-contained SVG with a stable id (pygal picks a random uuid)."""
    chart_id = "chart-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    svg = _SCRIPT.sub("", _COMMENT.sub("", chart.render(is_unicode=True)))
    svg = _UUID_ID.sub(chart_id, svg)
    if css:
        svg = svg.replace("</defs>", f"<style>{css.replace('#C', '#' + chart_id)}</style></defs>", 1)
    return svg


def _colors(series: list[Series]) -> list[str]:
    return [s.color or DEFAULT_COLORS[i % len(DEFAULT_COLORS)] for i, s in enumerate(series)]


def line_chart(title: str, y_title: str, x_labels: list[str], series: list[Series], *,
               percent: bool = False, y_range: tuple[float, float] | None = None) -> str:
    """A line per series; ``None`` values leave gaps."""
    import pygal

    extra: dict[str, Any] = {"range": y_range} if y_range else {}
    if percent:
        extra["value_formatter"] = lambda v: f"{v:.0%}" if v is not None else "-"
    chart = pygal.Line(**_config(title, y_title, _colors(series), x_title="round", **extra))
    chart.x_labels = x_labels
    css = []
    for i, s in enumerate(series):
        chart.add(s.name, s.values)
        stroke = "stroke-width:2;stroke-dasharray:7,5" if s.dashed else "stroke-width:4"
        css.append(f"#C .series.serie-{i} .line.reactive{{{stroke};stroke-opacity:1}}")
    return _svg(chart, title, "".join(css))


def bar_chart(title: str, y_title: str, x_labels: list[str], series: list[Series]) -> str:
    import pygal

    chart = pygal.Bar(**_config(title, y_title, _colors(series)))
    chart.x_labels = x_labels
    for s in series:
        chart.add(s.name, s.values)
    return _svg(chart, title)
