"""Compare a command's expected output with what it printed.

``align`` finds the cheapest alignment of patterns to lines (``...`` absorbs any
number of lines for free). Its by-product is the block to write back: patterns
that matched stay as written (so ``(re)`` lines and ``...`` survive a
re-record), everything else becomes the actual output. The diff a user sees is
the difference between the file and that block, so it shows exactly what
``--record`` would write.
"""

from __future__ import annotations

from kmodemu.scenario.lines import Line, Pattern, finish_block

#: above this many cells the alignment gives up on keeping patterns (it still decides pass/fail)
MAX_CELLS = 1_000_000


def align(patterns: list[Pattern], lines: list[Line]) -> tuple[bool, list[str]]:
    """Return (matched, block to write back)."""
    if _straight(patterns, lines):
        return True, [p.raw for p in patterns]
    m, n = len(patterns), len(lines)
    if (m + 1) * (n + 1) > MAX_CELLS:
        return False, finish_block([line.render() for line in lines])
    cost = _costs(patterns, lines)
    out: list[str] = []
    i = j = 0
    while i < m or j < n:
        p = patterns[i] if i < m else None
        if p is not None and p.kind == "ellipsis":
            if j < n and cost[i][j] != cost[i + 1][j]:
                j += 1            # absorbed by the ellipsis (it ends as soon as it may)
                continue
            out.append(p.raw)
            i += 1
            continue
        here = cost[i][j]
        if p is not None and j < n and p.matches(lines[j]) and here == cost[i + 1][j + 1]:
            out.append(p.raw)
            i, j = i + 1, j + 1
        elif p is not None and here == 1 + cost[i + 1][j]:
            i += 1                # expected line missing from the output
        else:
            out.append(lines[j].render())
            j += 1
    return cost[0][0] == 0, finish_block(out)


def _straight(patterns: list[Pattern], lines: list[Line]) -> bool:
    """The common case: one pattern per line, all matching."""
    return len(patterns) == len(lines) and all(
        p.kind != "ellipsis" and p.matches(line) for p, line in zip(patterns, lines))


def _costs(patterns: list[Pattern], lines: list[Line]) -> list[list[int]]:
    """cost[i][j]: fewest unmatched lines aligning patterns[i:] with lines[j:]."""
    m, n = len(patterns), len(lines)
    cost = [[0] * (n + 1) for _ in range(m + 1)]
    for j in range(n - 1, -1, -1):
        cost[m][j] = cost[m][j + 1] + 1
    for i in range(m - 1, -1, -1):
        p = patterns[i]
        row, below = cost[i], cost[i + 1]
        if p.kind == "ellipsis":
            row[n] = below[n]
            for j in range(n - 1, -1, -1):
                row[j] = min(below[j], row[j + 1])
            continue
        row[n] = below[n] + 1
        for j in range(n - 1, -1, -1):
            best = min(below[j], row[j + 1]) + 1
            if best > below[j + 1] and p.matches(lines[j]):
                best = below[j + 1]
            row[j] = best
    return cost
