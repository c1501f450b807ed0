"""``kmodemu run``: replay scenario files, report KTAP, exit 0/1/4 like kselftest."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import click

from kmodemu.scenario import report
from kmodemu.scenario.format import Scenario
from kmodemu.scenario.ktap import KtapWriter, TextWriter
from kmodemu.scenario.progress import Progress
from kmodemu.scenario.runner import ERROR, FAIL, PASS, SKIP, ScenarioResult, load_or_error, record, run_scenario
from kmodemu.scenario.select import expand, name_matches
from kmodemu.scenario.timeout import DEFAULT_TIMEOUT

EXIT_PASS, EXIT_FAIL, EXIT_SKIP, EXIT_INTERRUPTED = 0, 1, 4, 130


@click.command("run", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("-k", "keywords", multiple=True, metavar="PATTERN",
              help="Only scenarios whose name or path contains PATTERN (or matches it as a glob). "
                   "Repeatable.")
@click.option("--list", "list_only", is_flag=True, help="List the selected scenarios and exit.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Also write a JSON report (even if the run fails).")
@click.option("--force", is_flag=True, help="Let --json replace an existing file.")
@click.option("--repeat", type=click.IntRange(min=1), default=None, metavar="N",
              help="Run each scenario N times, each on a fresh machine.")
@click.option("--until-fail", is_flag=True,
              help="Repeat each scenario until it fails (at most --repeat times if given).")
@click.option("--record", "record_", is_flag=True,
              help="Rewrite the expected output of failing scenarios in place (after showing the diff).")
@click.option("--seed", type=int, default=None, help="Override every scenario's seed.")
@click.option("--format", "fmt", type=click.Choice(["ktap", "text"]), default="ktap", show_default=True,
              help="What stdout gets.")
@click.option("-v", "--verbose", is_flag=True, help="Each command as a KTAP subtest.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--trust-root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, metavar="DIR",
              help="The host tree scenarios may reach (module-path:, --content host:F, host paths of "
                   "the kmod tools). Default: the directory argument that holds the scenario, or "
                   "the scenario's own directory.")
@click.option("--host-shell", is_flag=True,
              help="Run modprobe.d install/remove lines with the host's /bin/sh, as you. RISK: a "
                   "scenario can then run any program on this computer. Default: an emulated sh.")
@click.option("--timeout", type=click.FloatRange(min=0), default=DEFAULT_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Fail a scenario that runs longer than this (0: no limit).")
@click.pass_context
def run(ctx, paths, keywords, list_only, json_path, force, repeat, until_fail, record_, seed, fmt,
        verbose, progress, trust_root, host_shell, timeout) -> None:
    """Run scenario files (FILE or DIR…, *.scn searched recursively).

    Each scenario boots a fresh machine, runs its commands and compares their
    output with the transcript. A mismatch shows as a unified diff.

    \b
    Exit status: 0 all passed, 1 any failed, 4 all skipped (or none selected),
    2 usage error, 130 interrupted.

    \b
    Examples:
      kmodemu run scenarios/
      kmodemu run scenarios/ -k lazy --json out.json
      kmodemu run scenarios/zcache/module-after-mount.scn --record
      kmodemu run scenarios/ -k replay --repeat 50 --until-fail
    """
    if record_ and (repeat or until_fail):
        raise click.UsageError("--record cannot be combined with --repeat or --until-fail")
    if json_path is not None and json_path.exists() and not force:
        raise click.UsageError(f"{json_path}: file exists (use --force to replace it)")
    if json_path is not None and not json_path.resolve().parent.is_dir():
        raise click.UsageError(f"{json_path}: no such directory")
    items = []
    roots: dict[int, Path] = {}
    for path in expand(list(paths)):
        item = load_or_error(path)
        if name_matches([item.name, str(path)], list(keywords)):
            roots[id(item)] = trust_root or _argument_root(path, paths)
            items.append(item)
    if list_only:
        for item in items:
            click.echo(f"{item.name}\t{item.path}")
        ctx.exit(EXIT_PASS if items else EXIT_SKIP)
    if not items:
        click.echo("kmodemu run: no scenarios selected", err=True)
        ctx.exit(EXIT_SKIP)

    writer = (KtapWriter if fmt == "ktap" else TextWriter)(sys.stdout)
    bar = Progress(len(items), sys.stderr, sys.stderr.isatty() if progress is None else progress)
    counts = {PASS: 0, FAIL: 0, SKIP: 0, ERROR: 0}
    cases: list[dict] = []
    interrupted = False
    exit_code = EXIT_FAIL
    try:
        writer.header(len(items))
        for item in items:
            bar.show(item.name)
            runs = _runs(item, repeat, until_fail, seed, bar,
                         dict(trust_root=roots[id(item)], host_shell=host_shell, timeout=timeout))
            worst = next((r for r in runs if r.status in (FAIL, ERROR)), runs[-1])
            recorded = record_ and isinstance(item, Scenario) and record(item, worst)
            status = PASS if recorded else worst.status
            counts[status] += 1
            cases.append(report.test_case(item.name, item.path, runs, recorded=recorded))
            bar.clear()
            if verbose and worst.steps:
                writer.subtests(worst.steps)
            writer.result(item.name, status, reason=worst.reason,
                          details=_details(worst, runs, recorded))
            bar.advance(status in (PASS, SKIP))
        bar.show()
        bar.clear()
        writer.totals(counts)
        exit_code = (EXIT_FAIL if counts[FAIL] or counts[ERROR] else
                     EXIT_PASS if counts[PASS] else EXIT_SKIP)
    except KeyboardInterrupt:
        bar.clear()
        interrupted, exit_code = True, EXIT_INTERRUPTED
        click.echo("kmodemu run: interrupted", err=True)
    finally:
        if json_path is not None:
            try:
                report.write(json_path, report.document(cases, exit_code=exit_code,
                                                        interrupted=interrupted), force=force)
            except OSError as e:
                click.echo(f"kmodemu run: cannot write {json_path}: {e.strerror or e}", err=True)
                exit_code = exit_code or EXIT_FAIL
    failed = counts[FAIL] + counts[ERROR]
    if failed and not interrupted:
        click.echo(f"kmodemu run: {failed} of {len(items)} scenarios failed"
                   + ("" if record_ else "; --record accepts the new output"), err=True)
    ctx.exit(exit_code)


def _argument_root(path: Path, args: tuple[Path, ...]) -> Path:
    """The directory the person named on the command line that holds ``path``."""
    real = path.resolve()
    for a in args:
        top = a.resolve()
        if top.is_dir() and (top == real or top in real.parents):
            return top
    return real.parent


def _runs(item, repeat: int | None, until_fail: bool, seed: int | None,
          bar: Progress, options: dict) -> list[ScenarioResult]:
    if isinstance(item, ScenarioResult):
        return [item]
    counter = itertools.count(1) if until_fail and repeat is None else range(1, (repeat or 1) + 1)
    runs = []
    for n in counter:
        if n > 1:
            bar.show(f"{item.name} (run {n})")
        result = run_scenario(item, seed=seed, **options)
        runs.append(result)
        if result.status == SKIP or (until_fail and result.status in (FAIL, ERROR)):
            break
    return runs


def _details(result: ScenarioResult, runs: list[ScenarioResult], recorded: bool) -> str:
    if recorded:
        return f"{result.diff.rstrip()}\nrecorded: {result.path}"
    if result.status in (PASS, SKIP) and len(runs) == 1:
        return ""
    parts = []
    if len(runs) > 1:
        bad = [i + 1 for i, r in enumerate(runs) if r.status in (FAIL, ERROR)]
        parts.append(f"{len(bad)} of {len(runs)} runs failed (first: run {bad[0]})" if bad
                     else f"{len(runs)} runs")
    if result.path is not None and result.status in (FAIL, ERROR):
        reason = result.reason or ""
        parts.append(reason if reason.startswith(str(result.path)) else f"{result.path}: {reason}")
    if result.diff:
        parts.append(result.diff.rstrip("\n"))
    return "\n".join(parts)
