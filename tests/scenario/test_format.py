"""Parsing scenario files: header, steps, blocks, here-documents and errors with line numbers."""

from __future__ import annotations

import pytest

from kmodemu.scenario.format import ScenarioSyntaxError, parse

TEXT = """\
# zcache built in
profile: 3.9
cmdline: zcache zcache=lzo
builtin: zcache, other
module-path: mods
seed: 7

$ lsmod
Module                  Size  Used by

# a comment ends the block
$ rmmod zcache
2> rmmod: ERROR: Module zcache is builtin.
[1]
$ cat > /etc/modprobe.d/z.conf <<EOF
options zcache x=1
# not a comment: inside the here-document
EOF
$ dmesg | tail -n 1
...


"""


def test_header_and_steps(tmp_path):
    s = parse(TEXT, path=tmp_path / "builtin.scn")
    assert s.name == "builtin"
    assert (s.profile, s.cmdline, s.builtin, s.seed) == ("3.9", "zcache zcache=lzo", ["zcache", "other"], 7)
    assert s.module_path == [str((tmp_path / "mods").resolve())]
    assert [st.command for st in s.steps] == ["lsmod", "rmmod zcache",
                                              "cat > /etc/modprobe.d/z.conf <<EOF", "dmesg | tail -n 1"]
    assert s.steps[0].expected == ["Module                  Size  Used by"]
    assert s.steps[1].expected == ["2> rmmod: ERROR: Module zcache is builtin.", "[1]"]
    assert s.steps[2].stdin == "options zcache x=1\n# not a comment: inside the here-document\n"
    assert s.steps[2].expected == []
    assert s.steps[3].expected == ["..."]
    assert s.machine_def().profile == "3.9"


def test_rebuild_replaces_only_the_blocks_given():
    s = parse(TEXT)
    new = s.rebuild({0: ["changed"], 2: ["2> oops", "[1]"]})
    assert "$ lsmod\nchanged\n\n# a comment" in new
    assert "EOF\n2> oops\n[1]\n$ dmesg" in new
    assert s.rebuild({}) == s.text


def test_blank_lines_inside_output_are_output():
    s = parse("$ x\na\n\nb\n\n\n$ y\n")
    assert s.steps[0].expected == ["a", "", "b"]


def test_name_header_wins_over_the_file_name(tmp_path):
    assert parse("name: nice\n$ x\n", path=tmp_path / "f.scn").name == "nice"


@pytest.mark.parametrize("text, line, message", [
    ("colour: blue\n", 1, "unknown header key 'colour'"),
    ("profile: 3.9\nprofile: 3.10\n", 2, "given twice"),
    ("just prose\n", 1, "expected 'key: value'"),
    ("$ x\nout\n# c\nstray\n", 4, "outside a command's block (after the comment on line 3)"),
    ("$ cat > /f <<EOF\nbody\n", 1, "here-document not terminated"),
    ("$ x\nfoo( (re)\n", 2, "bad regular expression"),
    ("$\n", 1, "empty command"),
    ("profile: 3.9\nseed: x\n", 2, "seed must be an integer"),
])
def test_errors_name_the_line(text, line, message):
    with pytest.raises(ScenarioSyntaxError) as info:
        parse(text, path="f.scn")
    assert info.value.lineno == line
    assert message in str(info.value)
    assert str(info.value).startswith(f"f.scn:{line}: ")
