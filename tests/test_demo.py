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

from kmodemu.demo import CONFIGS, QUICK, run_all
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
    hits = [int(x) for x in _row(r.stdout, "cleancache hits")[:4]]
    stores = [int(x) for x in _row(r.stdout, "frontswap stores")[:4]]
    none, boot, module, old = hits
    assert none == 0 and old == 0                  # no backend; 3.9 refused the module
    assert boot > 0 and module == boot             # lazy init: module after mount == built in
    assert stores[1] > 0 and stores[2] == stores[1] and stores[3] == 0
    reads = [int(x) for x in _row(r.stdout, "disk reads")[:4]]
    assert reads[1] < reads[0] and reads[3] == reads[0]
    assert "x" in _row(r.stdout, "compression ratio")[1]
    assert "MiB" in r.stdout
    assert "3.9 + module: $ modprobe zcache: modprobe: ERROR: could not insert 'zcache'" in r.stdout
    assert "Report: file://" in r.stdout
    assert "8 runs" in r.stderr and "cleancache" not in r.stderr   # progress only on stderr
    # every backend gave back the bytes written to it
    assert _row(r.stdout, "files intact (sha256)")[:4] == [f"{QUICK.files}/{QUICK.files}"] * 4
    assert _row(r.stdout, "pages read back wrong")[:4] == ["0"] * 4


def test_a_backend_swapped_without_a_reboot(quick):
    """Run 8 (3.10-unload): zcache unloaded halfway and zcache with lz4 loaded in its place."""
    r, _, doc = quick
    run = next(x for x in doc["runs"] if x["config"]["key"] == "swap")
    half = QUICK.rounds // 2
    assert run["notes"] == []
    i = run["commands"].index("rmmod zcache")
    assert run["commands"][i + 1] == "modprobe zcache zcache_comp_name=lz4"
    # both zcaches took pages: frontswap stores grew in each half
    stores = [s["frontswap_stores"] for s in run["samples"]]
    assert stores[half - 1] > 0 and stores[-1] > stores[half - 1]
    col = [c.key for c in CONFIGS].index("swap")
    assert _row(r.stdout, "files intact (sha256)")[col] == f"{QUICK.files}/{QUICK.files}"
    assert _row(r.stdout, "pages read back wrong")[col] == "0"


def test_json_has_every_sample(quick):
    _, _, doc = quick
    assert doc["workload"]["rounds"] == QUICK.rounds
    assert [run["config"]["key"] for run in doc["runs"]] == [c.key for c in CONFIGS]
    assert [len(run["samples"]) for run in doc["runs"][:4]] == [QUICK.rounds] * 4
    for run in doc["runs"]:
        assert len(run["samples"]) == (0 if run["unavailable"] else QUICK.rounds), run["notes"]


def test_parallel_runs_give_the_same_figures():
    keys = ("none", "boot", "module", "module-3.9")
    serial = [asdict(r) for r in run_all(QUICK, jobs=1, keys=keys)]
    assert [asdict(r) for r in run_all(QUICK, jobs=2, keys=keys)] == serial


# -- ramster and Xen tmem: run for real where this build has them, "not available" otherwise --

def _build_has_ramster() -> bool:
    """Independently of the demo: does zcache here take ramster=1 (RAMster configured in)?"""
    from kmodemu.machine import Machine, MachineDef
    with Machine(MachineDef(mem="64M")) as m:
        return m.capture(["modprobe", "zcache", "ramster=1"])[0] == 0


def _build_has_xen() -> bool:
    from kmodemu.cli import main
    return "--xen" in CliRunner().invoke(main, ["boot", "--help"]).stdout


def test_ramster_column_matches_the_build(quick):
    r, html, doc = quick
    run = next(x for x in doc["runs"] if x["config"]["key"] == "ramster")
    col = [c.key for c in CONFIGS].index("ramster")
    if not _build_has_ramster():
        assert run["samples"] == [] and run["unavailable"].startswith("RAMster: modprobe: ERROR: "
                                                                       "could not insert 'zcache'")
        assert _row(r.stdout, "cleancache hits")[col] == "n/a"
        assert f"  ramster: {run['unavailable']}\n" in r.stdout
        assert "n/a: not available in this build:" in r.stdout
        assert run["commands"][-1] == "modprobe zcache ramster=1"   # it stopped where it was refused
        return
    assert run["unavailable"] is None, run["notes"]
    final = run["samples"][-1]
    assert final["remote"]["pers_pages_remoted"] + final["remote"]["eph_pages_remoted"] > 0
    assert final["remote"]["foreign_pers_pages"] + final["remote"]["foreign_eph_pages"] > 0
    assert _row(r.stdout, "files intact (sha256)")[col] == f"{QUICK.files}/{QUICK.files}"
    assert final["corrupt"] == 0 and final["disk_reads"] < doc["runs"][0]["samples"][-1]["disk_reads"]
    assert "Pages in a peer" in html.read_text()


def test_xen_columns_match_the_build(quick):
    r, _, doc = quick
    runs = [x for x in doc["runs"] if x["config"]["kind"] == "xen"]
    assert [x["config"]["key"] for x in runs] == ["xen-boot", "xen-module"]
    if not _build_has_xen():
        for run in runs:
            assert run["samples"] == [] and run["commands"] == []
            assert run["unavailable"] == "no Xen hypervisor: kmodemu boot --xen: No such option '--xen'."
        return
    base = doc["runs"][0]["samples"][-1]
    for run in runs:
        assert run["unavailable"] is None, run["notes"]
        final = run["samples"][-1]
        assert final["cleancache_hits"] > 0 and final["corrupt"] == 0
        assert final["frontswap_stores"] > 0 and final["swap_writes"] < base["swap_writes"]
        assert run["digests"] == doc["runs"][0]["digests"]
    # lazy init: the guest that loaded the module after its mounts ends where the booted one is
    assert runs[0]["samples"] == runs[1]["samples"]
    assert sum(runs[0]["samples"][-1]["host"].values()) > 0   # the host's tmem holds their pages
    assert "Xen host RAM in tmem" in r.stdout


def test_unavailable_runs_leave_no_machine_behind(tmp_path, monkeypatch):
    """The multi-machine runs boot real machine processes: all are stopped and removed."""
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    runs = run_all(QUICK, jobs=1, keys=("none", "ramster", "xen-boot", "xen-module"))
    assert [r.config.key for r in runs] == ["none", "ramster", "xen-boot", "xen-module"]
    assert list(tmp_path.iterdir()) == []


def test_not_available_in_the_table_and_report():
    """The rendering of a run this build cannot make (whatever this build has)."""
    from kmodemu.demo import NOT_AVAILABLE, Run, format_table
    from kmodemu.report.html import render_report

    base = run_all(QUICK, jobs=1, keys=("none",))[0]
    gone = Run(next(c for c in CONFIGS if c.key == "ramster"), commands=["modprobe zcache ramster=1"],
               unavailable="RAMster: zcache: ramster requested, but this kernel has no ramster module")
    text = format_table([base, gone])
    assert _row(text, "disk reads") == [str(base.final.disk_reads), "n/a"]
    assert text.endswith("n/a: not available in this build:\n  ramster: RAMster: zcache: ramster "
                         "requested, but this kernel has no ramster module")
    html = render_report([base, gone], QUICK)
    assert check_html(html) == []
    assert html.count(f'<td class="na" rowspan="13">{NOT_AVAILABLE}</td>') == 1
    assert "ramster: profile 3.10 (3.10, TCP), command line &#x27;&#x27; (not available" in html
    assert "Pages in a peer" not in html


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
    assert "kmodemu demo: one workload on every tmem backend" in dom.stdout
    assert dom.stdout.count("<svg") >= 4 and "<table>" in dom.stdout
    shot = tmp_path / "report.png"
    r = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1024,2400", html.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_a_run_that_failed_is_not_called_unavailable():
    from kmodemu.demo import Run, format_table
    from kmodemu.report.html import render_report

    base = run_all(QUICK, jobs=1, keys=("none",))[0]
    broke = Run(next(c for c in CONFIGS if c.key == "xen-boot"),
                notes=["kmodemu boot --xen: the kernel did not boot: Out of memory"])
    text = format_table([base, broke])
    assert _row(text, "cleancache hits") == ["0", "failed"]
    assert "not available" not in text
    html = render_report([base, broke], QUICK)
    assert '<td class="na" rowspan="13">failed: see the notes</td>' in html
    assert "the kernel did not boot: Out of memory" in html
