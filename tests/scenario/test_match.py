"""Alignment of expected output with actual output, and what a re-record keeps."""

from __future__ import annotations

from kmodemu.scenario.lines import ERR, OUT, RC, Line, Pattern
from kmodemu.scenario.match import align


def pats(*raws):
    return [Pattern.parse(r) for r in raws]


def out(*texts):
    return [Line(OUT, t) for t in texts]


def test_exact_match():
    assert align(pats("a", "b"), out("a", "b")) == (True, ["a", "b"])


def test_ellipsis_absorbs_any_number_of_lines():
    assert align(pats("first", "...", "last"), out("first", "x", "y", "last"))[0]
    assert align(pats("first", "...", "last"), out("first", "last"))[0]
    assert align(pats("..."), [])[0]
    assert not align(pats("first", "...", "last"), out("first", "x"))[0]


def test_failure_keeps_matching_patterns_and_takes_the_rest_from_the_output():
    ok, block = align(pats(r"\d+ pages (re)", "...", "done", "gone"),
                      out("12 pages", "noise", "done", "new"))
    assert not ok
    assert block == [r"\d+ pages (re)", "...", "done", "new"]


def test_streams_and_status_are_part_of_the_transcript():
    actual = [Line(ERR, "insmod: ERROR: nope"), Line(RC, "1")]
    assert align(pats("2> insmod: ERROR: nope", "[1]"), actual)[0]
    assert not align(pats("insmod: ERROR: nope", "[1]"), actual)[0]
    assert align(pats(), actual) == (False, ["2> insmod: ERROR: nope", "[1]"])


def test_output_lost_trailing_blank_lines_are_written_escaped():
    assert align(pats(), out("a", "")) == (False, ["a", "\\"])
