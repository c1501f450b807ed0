"""Output lines written into a scenario read back as patterns that match them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmodemu.scenario.lines import ERR, OUT, RC, Line, Pattern, PatternError, render_block


@given(stream=st.sampled_from([OUT, ERR]), text=st.text(max_size=40), eol=st.booleans())
def test_every_line_round_trips(stream, text, eol):
    line = Line(stream, text, eol)
    raw = line.render()
    assert "\n" not in raw and "\r" not in raw
    assert Pattern.parse(raw).matches(line), raw


@pytest.mark.parametrize("text, raw", [
    ("plain", "plain"),
    ("$ looks like a command", "\\$ looks like a command"),
    ("# looks like a comment", "\\# looks like a comment"),
    ("2> looks like stderr", "\\2> looks like stderr"),
    ("[1]", "\\[1]"),
    ("...", "\\..."),
    ("\\backslash", "\\\\backslash"),
    ("ends (re)", "ends\\ \\(re\\) (re)"),
    ("nul\x00byte", "nul\\x00byte (esc)"),
    ("kmod's trailing blank ", "kmod's trailing blank\\x20 (esc)"),
    ("tab\tinside", "tab\tinside"),
])
def test_stdout_escapes(text, raw):
    assert Line(OUT, text).render() == raw
    assert Pattern.parse(raw).matches(Line(OUT, text))


def test_stderr_status_and_no_eol():
    assert Line(ERR, "rmmod: ERROR: x").render() == "2> rmmod: ERROR: x"
    assert Line(ERR, "").render() == "2>"
    assert Line(RC, "1").render() == "[1]"
    assert Line(OUT, "partial", eol=False).render() == "partial (no-eol)"
    assert not Pattern.parse("partial").matches(Line(OUT, "partial", eol=False))


def test_trailing_empty_lines_are_escaped():
    assert render_block([Line(OUT, "a"), Line(OUT, ""), Line(OUT, "")]) == ["a", "\\", "\\"]
    assert render_block([Line(OUT, ""), Line(OUT, "a")]) == ["", "a"]


@pytest.mark.parametrize("raw, text, ok", [
    (r"\[ *\d+\.\d+\] zcache: .* (re)", "[    0.250000] zcache: loaded", True),
    (r"\[ *\d+\.\d+\] zcache: .* (re)", "[    0.250000] zswap: loaded", False),
    ("zcache * pages (glob)", "zcache 12 pages", True),
    ("a\\*b (glob)", "a*b", True),
    ("a\\*b (glob)", "axb", False),
    ("2> rmmod: .* (re)", "rmmod: ERROR: x", False),  # stderr pattern, stdout line
])
def test_patterns(raw, text, ok):
    assert Pattern.parse(raw).matches(Line(OUT, text)) is ok


def test_bad_regex_is_reported():
    with pytest.raises(PatternError, match="bad regular expression"):
        Pattern.parse("a(b (re)")
