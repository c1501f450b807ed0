"""``kmodemu demo``: the figures tell the lazy-init story, and the HTML report is
self-contained (checked structurally, and in a headless chromium when there is one)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmodemu.demo import QUICK, run_all
from kmodemu.report.check import check_html

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from kmodemu.cli import main

    d = tmp_path_factory.mktemp("demo")
    r = CliRunner().invoke(main, ["demo", "--quick", "-j", "1", "--html", str(d / "report.html"),
                                  "--json", str(d / "runs.json")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r, d / "report.html", json.loads((d / "runs.json").read_text())


def _row(stdout: str, name: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith(name))
    return line[len(name):].split()


def test_table_tells_the_story(quick):
    r, _, _ = quick
    hits = [int(x) for x in _row(r.stdout, "cleancache hits")]
    stores = [int(x) for x in _row(r.stdout, "frontswap stores")]
    none, boot, module, old = hits
    assert none == 0 and old == 0                  # no backend; 3.9 refused the module
    assert boot > 0 and module == boot             # lazy init: module after mount == built in
    assert stores[1] > 0 and stores[2] == stores[1] and stores[3] == 0
    reads = [int(x) for x in _row(r.stdout, "disk reads")]
    assert reads[1] < reads[0] and reads[3] == reads[0]
    assert "x" in _row(r.stdout, "compression ratio")[1]
    assert "MiB" in r.stdout
    assert "3.9 + module: $ modprobe zcache: modprobe: ERROR: could not insert 'zcache'" in r.stdout
    assert "Report: file://" in r.stdout
    assert "kernels" in r.stderr and "cleancache" not in r.stderr   # progress only on stderr


def test_json_has_every_sample(quick):
    _, _, doc = quick
    assert doc["workload"]["rounds"] == QUICK.rounds
    assert [len(run["samples"]) for run in doc["runs"]] == [QUICK.rounds] * 4


def test_parallel_runs_give_the_same_figures():
    serial = [asdict(r) for r in run_all(QUICK, jobs=1)]
    assert [asdict(r) for r in run_all(QUICK, jobs=2)] == serial


def test_report_is_self_contained(quick):
    _, html, _ = quick
    text = html.read_text()
    assert check_html(text) == []
    assert text.count("<svg") >= 4
    for title in ("cleancache hit rate", "frontswap hit rate", "zbud density", "RAM used by zcache"):
        assert title in text
    assert "<table>" in text and "$ modprobe zcache" in text
    # byte-identical reports: no random chart ids (pygal uses uuid4 unless told otherwise)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)


@pytest.mark.parametrize("bad, problem", [
    ("<!DOCTYPE html><html><body><svg></svg><div></body></html>", "closes <div>"),
    ('<!DOCTYPE html><html><body><svg></svg><img src="https://x/y.png"></body></html>',
     "external reference"),
    ("<!DOCTYPE html><html><body><style>@import 'a.css';</style><svg></svg></body></html>",
     "external reference"),
    ("<!DOCTYPE html><html><body><p>no chart</p></body></html>", "no inline <svg>"),
    ("<!DOCTYPE html><html><body><svg></svg>", "unclosed elements"),
])
def test_checker_catches_problems(bad, problem):
    assert any(problem in p for p in check_html(bad))


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("KMODEMU_BROWSER_TESTS") == "1":
        subprocess.run([str(REPO / "scripts" / "install-browser.sh")], check=True, timeout=900)
        found = shutil.which("chromium")
    return found


def test_report_renders_in_a_headless_browser(quick, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium (KMODEMU_BROWSER_TESTS=1 installs it with scripts/install-browser.sh)")
    _, html, _ = quick
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(flags + ["--dump-dom", html.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr
    assert "kmodemu demo: one workload, four kernels" in dom.stdout
    assert dom.stdout.count("<svg") >= 4 and "<table>" in dom.stdout
    shot = tmp_path / "report.png"
    r = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1024,2400", html.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
