"""``kmodemu run``: KTAP, diffs, --record, exit codes, --json, selection and repeats."""

from __future__ import annotations

import json

import pytest

from kmodemu.scenario.report import validate

GOOD = """\
# the command line reaches /proc
cmdline: quiet zcache
$ cat /proc/cmdline
quiet zcache
$ dmesg | grep 'Kernel command line'
\\[ *[0-9.]+\\] Kernel command line: .* (re)
$ cat /proc/nope
2> cat: /proc/nope: No such file or directory
[1]
"""

BAD = """\
cmdline: quiet
$ uname -r
3.10.0-kmodemu
$ cat /proc/cmdline
loud
$ dmesg | grep -c 'Kernel command line'
1
"""


def test_passing_scenario_prints_ktap(cli, scn):
    r = cli("run", scn("good", GOOD))
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["KTAP version 1", "1..1", "ok 1 good",
                                     "# Totals: pass:1 fail:0 skip:0 error:0"]
    assert r.stderr == ""


def test_failure_shows_a_unified_diff_with_file_lines(cli, scn):
    path = scn("bad", BAD)
    r = cli("run", path)
    assert r.exit_code == 1
    out = r.stdout.splitlines()
    assert "not ok 1 bad" in out
    assert f"# {path}: 1 of 3 commands differ" in out
    assert f"# --- {path}" in out and f"# +++ {path} (actual)" in out
    assert "# -loud" in out and "# +quiet" in out
    assert any(line.startswith("# @@ -") for line in out)
    assert "--record" in r.stderr and "KTAP" not in r.stderr


def test_record_round_trips_and_keeps_patterns(cli, scn):
    path = scn("bad", BAD + "$ dmesg | head -n 1\n\\[ *[0-9.]+\\] Linux version .* (re)\n"
                            "$ cat /proc/cmdline\n...\n")
    r = cli("run", path, "--record")
    assert r.exit_code == 0
    assert "# -loud" in r.stdout and f"# recorded: {path}" in r.stdout and "ok 1 bad" in r.stdout
    text = path.read_text()
    assert "$ cat /proc/cmdline\nquiet\n" in text
    assert "\\] Linux version .* (re)\n" in text          # a matching regex line survives
    assert text.endswith("$ cat /proc/cmdline\n...\n")    # and so does an ellipsis
    assert cli("run", path).exit_code == 0
    again = cli("run", path, "--record")
    assert again.exit_code == 0 and path.read_text() == text  # nothing left to record


def test_record_from_an_empty_transcript(cli, scn):
    path = scn("new", "cmdline: a b\n$ cat /proc/cmdline\n$ cat /nope\n")
    assert cli("run", path, "--record").exit_code == 0
    assert path.read_text() == ("cmdline: a b\n$ cat /proc/cmdline\na b\n$ cat /nope\n"
                                "2> cat: /nope: No such file or directory\n[1]\n")


def test_exit_codes(cli, scn, tmp_path):
    good, bad = scn("good", GOOD), scn("bad", BAD)
    skipped = scn("skipped", "skip: not today\n$ uname\n")
    missing = scn("missing", "requires: no-such-command\n$ uname\n")
    assert cli("run", good, skipped).exit_code == 0
    assert cli("run", good, bad, skipped).exit_code == 1
    r = cli("run", skipped, missing)
    assert r.exit_code == 4
    assert "ok 1 skipped # SKIP not today" in r.stdout
    assert "ok 2 missing # SKIP requires command(s) not available here: no-such-command" in r.stdout
    none = cli("run", tmp_path, "-k", "zzz")
    assert none.exit_code == 4 and "no scenarios selected" in none.stderr and none.stdout == ""
    assert cli("run", tmp_path / "absent.scn").exit_code == 2
    assert cli("run", good, "--record", "--repeat", "2").exit_code == 2


def test_syntax_and_boot_errors_are_errors_not_crashes(cli, scn):
    broken = scn("broken", "$ x\nout\n# c\nstray\n")
    panic = scn("badprofile", "profile: 2.6\n$ uname\n")
    r = cli("run", broken, panic)
    assert r.exit_code == 1
    assert f"not ok 1 broken # ERROR {broken}:4: output line outside" in r.stdout
    assert "not ok 2 badprofile # ERROR boot failed: unknown kernel profile '2.6'" in r.stdout


def test_json_report(cli, scn, tmp_path):
    out = tmp_path / "report.json"
    r = cli("run", scn("good", GOOD), scn("bad", BAD), scn("skipped", "skip: later\n$ x\n"),
            "--json", out)
    assert r.exit_code == 1
    doc = json.loads(out.read_text())
    assert validate(doc) == []
    assert (doc["status"], doc["exit_code"]) == ("FAIL", 1)
    assert doc["misc"] == {"total": 3, "passed": 1, "failed": 1, "skipped": 1, "errors": 0}
    cases = {c["name"]: c for c in doc["test_cases"]}
    assert cases["bad"]["diff"].startswith("--- ")
    assert [s["status"] for s in cases["bad"]["steps"]] == ["PASS", "FAIL", "PASS"]
    assert cases["good"]["steps"][2]["exit_code"] == 1
    assert cases["skipped"]["reason"] == "later"
    # deterministic: the same run gives the same bytes
    again = tmp_path / "again.json"
    cli("run", tmp_path / "good.scn", tmp_path / "bad.scn", tmp_path / "skipped.scn", "--json", again)
    assert again.read_bytes() == out.read_bytes()


def test_json_never_replaces_a_file_without_force(cli, scn, tmp_path):
    out = tmp_path / "report.json"
    out.write_text("precious")
    r = cli("run", scn("good", GOOD), "--json", out)
    assert r.exit_code == 2 and "file exists" in r.stderr and out.read_text() == "precious"
    assert cli("run", tmp_path / "good.scn", "--json", out, "--force").exit_code == 0
    assert json.loads(out.read_text())["status"] == "PASS"


def test_list_and_select(cli, scn, tmp_path):
    scn("lazy-mount-first", GOOD)
    scn("lazy-swap-first", GOOD)
    scn("builtin", GOOD)
    r = cli("run", tmp_path, "--list")
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == [
        "builtin", "lazy-mount-first", "lazy-swap-first"]
    r = cli("run", tmp_path, "-k", "LAZY", "--list")
    assert len(r.stdout.splitlines()) == 2
    r = cli("run", tmp_path, "-k", "*swap*", "-k", "builtin")
    assert r.exit_code == 0 and "ok 1 builtin" in r.stdout and "ok 2 lazy-swap-first" in r.stdout


def test_repeat_and_until_fail(cli, scn):
    good, bad = scn("good", GOOD), scn("bad", BAD)
    r = cli("run", good, "--repeat", "3", "--json", good.with_suffix(".json"))
    assert r.exit_code == 0 and "# 3 runs" in r.stdout
    assert json.loads(good.with_suffix(".json").read_text())["test_cases"][0]["runs"] == 3
    r = cli("run", bad, "--repeat", "3")
    assert "# 3 of 3 runs failed (first: run 1)" in r.stdout
    r = cli("run", bad, "--until-fail")     # stops at the first failure
    assert r.exit_code == 1 and "# 1 of 1 runs failed" not in r.stdout and "not ok 1 bad" in r.stdout
    r = cli("run", good, "--until-fail", "--repeat", "4")
    assert r.exit_code == 0 and "# 4 runs" in r.stdout


def test_text_format_and_progress_bar_on_stderr(cli, scn):
    r = cli("run", scn("good", GOOD), scn("bad", BAD), "--format", "text", "--progress")
    assert r.stdout.splitlines()[0] == "PASS  good"
    assert "FAIL  bad" in r.stdout and "\r" not in r.stdout
    assert "[" in r.stderr and "2/2" in r.stderr and "\r\x1b[K" in r.stderr
    quiet = cli("run", scn("good2", GOOD))  # not a terminal: no bar
    assert quiet.stderr == ""


def test_same_scenario_same_output(cli, scn):
    path = scn("bad", BAD)
    assert cli("run", path).stdout == cli("run", path).stdout


@pytest.mark.parametrize("seed", ["0", "42"])
def test_seed_override_is_reported(cli, scn, tmp_path, seed):
    out = tmp_path / f"s{seed}.json"
    cli("run", scn("good", GOOD), "--seed", seed, "--json", out)
    assert json.loads(out.read_text())["test_cases"][0]["seed"] == int(seed)


def test_interrupt_exits_130_and_still_writes_json(cli, scn, tmp_path, monkeypatch):
    import kmodemu.scenario.cli as run_cli

    real, calls = run_cli.run_scenario, []

    def interrupted(item, **kw):
        calls.append(item.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(item, **kw)

    monkeypatch.setattr(run_cli, "run_scenario", interrupted)
    out = tmp_path / "partial.json"
    r = cli("run", scn("a", GOOD), scn("b", GOOD), scn("c", GOOD), "--json", out)
    assert r.exit_code == 130 and "interrupted" in r.stderr
    doc = json.loads(out.read_text())
    assert validate(doc) == [] and doc["interrupted"] is True and doc["exit_code"] == 130
    assert [c["name"] for c in doc["test_cases"]] == ["a"]


def test_k_matches_the_path_too(cli, scn, tmp_path):
    sub = tmp_path / "lazy-init"
    sub.mkdir()
    (sub / "order.scn").write_text(GOOD)
    scn("other", GOOD)
    r = cli("run", tmp_path, "-k", "lazy", "--list")
    assert r.stdout.splitlines() == [f"order\t{sub / 'order.scn'}"]


def test_verbose_gives_each_command_as_a_ktap_subtest(cli, scn):
    r = cli("run", scn("bad", BAD), "-v")
    lines = r.stdout.splitlines()
    i = lines.index("  KTAP version 1")
    assert lines[i + 1:i + 5] == ["  1..3", "  ok 1 line 2: $ uname -r",
                                  "  not ok 2 line 4: $ cat /proc/cmdline",
                                  "  ok 3 line 6: $ dmesg | grep -c 'Kernel command line'"]
    assert lines[i + 5].startswith("# ") and "not ok 1 bad" in lines
