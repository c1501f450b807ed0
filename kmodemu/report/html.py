"""The demo's HTML report: the table, hit rate over time, zbud density, what ran."""

from __future__ import annotations

from html import escape

from kmodemu.report.charts import Series, bar_chart, line_chart
from kmodemu.report.runs import NOT_AVAILABLE, Run, Workload, table_rows

CSS = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.sub { padding-left: 2em; color: #555; }
.note { color: #8a4b00; }
td.na { color: #777; font-style: italic; text-align: center; vertical-align: middle; }
li.na { color: #555; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; }
"""


def render_report(runs: list[Run], work: Workload) -> str:
    ran = [r for r in runs if r.samples]
    rounds = [str(s.round) for s in runs[0].samples]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<title>kmodemu demo: one workload on every tmem backend</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<h1>kmodemu demo: one workload on every tmem backend</h1>",
        f"<p>The same file-and-swap workload ({escape(work.describe())}) on: no backend; zcache "
        "built in and enabled by the <code>zcache</code> boot parameter; zcache loaded as a module "
        "after the filesystem was mounted and swap enabled (Linux 3.10 replays both to it: lazy "
        "initialization); the same module on 3.9, which has no lazy initialization; RAMster "
        "(<code>zcache ramster=1</code>), whose node sends its compressed pages to a RAM server "
        "over TCP; and Xen tmem, two guests of one Xen host, one booted with <code>tmem</code>, "
        "one loading the <code>tmem</code> module after its mounts. A backend this build does "
        f"not have is shown as &ldquo;{escape(NOT_AVAILABLE)}&rdquo;.</p>",
        "<h2>Side by side</h2>",
        _table(runs, table_rows(runs)),
    ]
    missing = [r for r in runs if r.unavailable]
    if missing:
        parts.append("<ul>" + "".join(
            f'<li class="na"><b>{escape(r.config.title)}</b>: {escape(NOT_AVAILABLE)} '
            f"({escape(r.unavailable or '')})</li>" for r in missing) + "</ul>")
    notes = [(r.config.title, n) for r in runs if not r.unavailable for n in r.notes]
    if notes:
        parts.append("<ul>" + "".join(f'<li class="note"><b>{escape(t)}</b>: {escape(n)}</li>'
                                      for t, n in notes) + "</ul>")
    parts += [
        "<h2>Hit rate over time</h2>",
        "<p>Per round: the share of page-cache misses that cleancache served (instead of the disk), "
        "and the share of swapped-out pages that came back from frontswap (instead of the swap "
        "device).</p>",
        _figure(line_chart("cleancache hit rate", "hit rate", rounds,
                           [_series(r, r.rates("cleancache_hits", "disk_reads")) for r in ran],
                           percent=True, y_range=(0, 1))),
        _figure(line_chart("frontswap hit rate", "hit rate", rounds,
                           [_series(r, r.rates("frontswap_loads", "swap_disk_reads")) for r in ran],
                           percent=True, y_range=(0, 1))),
        "<p>Dashed lines lie on top of solid ones where two runs have the same figures.</p>",
    ]
    zruns = [r for r in ran if r.zcache_present and r.zframes()]
    if zruns:
        parts += [
            "<h2>zbud density</h2>",
            "<p>Compressed pages per page frame zcache holds (zbud packs at most two), and the "
            "RAM those frames take.</p>",
            _figure(line_chart("zbud density", "pages per frame", rounds,
                               [_series(r, [r.density(s) for s in r.samples]) for r in zruns],
                               y_range=(0, 2))),
            _figure(line_chart("RAM used by zcache", "MiB", rounds,
                               [_series(r, [r.zframes(s) * 4096 / (1 << 20) for s in r.samples])
                                for r in zruns])),
        ]
    rruns = [r for r in ran if r.final.remote]
    if rruns:
        parts += [
            "<h2>Pages in a peer's RAM</h2>",
            "<p>RAMster: compressed pages the node has sent to its RAM server, and those the "
            "server holds for it, per round.</p>",
            _figure(line_chart("pages in a peer's RAM", "pages", rounds,
                               [Series(f"{r.config.title}: {label}",
                                       [sum(s.remote.get(f, 0) for f in fields) for s in r.samples],
                                       color, dashed)
                                for r in rruns
                                for label, fields, color, dashed in (
                                    ("sent", ("eph_pages_remoted", "pers_pages_remoted"),
                                     r.config.color, False),
                                    ("held by the server", ("foreign_eph_pages",
                                                            "foreign_pers_pages"),
                                     "#17becf", True))])),
        ]
    xruns = [r for r in ran if r.final.host]
    if xruns:
        parts += [
            "<h2>The Xen host's memory in tmem</h2>",
            "<p>What the hypervisor's tmem holds for its guests (persistent: their swapped pages; "
            "ephemeral: clean file pages), from <code>xl info</code> once a round. The guests share "
            "the host, so both have the same figure.</p>",
            _figure(line_chart("Xen host RAM in tmem", "MiB", rounds,
                               [Series(label, [s.host.get(f, 0) / 1024 for s in xruns[0].samples],
                                       color, dashed)
                                for label, f, color, dashed in (
                                    ("persistent", "tmem_persistent_kb", xruns[0].config.color,
                                     False),
                                    ("ephemeral", "tmem_ephemeral_kb", "#bcbd22", True))])),
        ]
    parts.append(_figure(bar_chart("I/O per run", "pages", [r.config.title for r in ran],
                                   [Series("disk reads", [r.final.disk_reads for r in ran], "#888888"),
                                    Series("swap writes", [r.final.swap_writes for r in ran],
                                           "#1f77b4")])))
    parts.append("<h2>What ran</h2>")
    for r in runs:
        head = (f"{r.config.title}: profile {r.config.profile} ({r.config.where}), command line "
                f"'{r.config.cmdline}'" + (", built in: " + " ".join(r.config.builtin)
                                           if r.config.builtin else ""))
        if r.unavailable:
            head += f" ({NOT_AVAILABLE})"
        body = "\n".join(f"$ {c}" for c in r.commands)
        for machine, commands in r.others.items():
            body += f"\n\n# on the {machine}:\n" + "\n".join(f"$ {c}" for c in commands)
        parts.append(f"<details><summary>{escape(head)}</summary><pre>"
                     + escape(body) + "</pre></details>")
    parts += ["<p>Generated by <code>kmodemu demo</code>. Every figure is deterministic: the "
              "emulator runs on a virtual clock with seeded randomness.</p>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _table(runs, rows) -> str:
    head = "".join(f"<th>{escape(r.config.title)}<br><small>{escape(r.config.where)}</small></th>"
                   for r in runs)
    body = []
    for i, (name, cells) in enumerate(rows):
        sub = name.startswith("  ")
        first = f'<td class="sub">{escape(name.strip())}</td>' if sub else f"<td>{escape(name)}</td>"
        tds = []
        for r, c in zip(runs, cells):
            if r.samples:
                tds.append(f"<td>{escape(c)}</td>")
            elif i == 0:  # one cell down the whole column says why there are no figures
                text = NOT_AVAILABLE if r.unavailable else "failed: see the notes"
                tds.append(f'<td class="na" rowspan="{len(rows)}">{escape(text)}</td>')
        body.append("<tr>" + first + "".join(tds) + "</tr>")
    return (f"<table><thead><tr><th></th>{head}</tr></thead><tbody>" + "".join(body)
            + "</tbody></table>")


def _series(run, values) -> Series:
    return Series(run.config.title, values, run.config.color, run.config.dashed)


def _figure(svg: str) -> str:
    return f"<figure>{svg}</figure>"
