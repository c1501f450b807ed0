"""xl's config syntax (libxlu): round trips under hypothesis, libxlu's error wording."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmodemu.xen import xlcfg

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,10}", fullmatch=True)
STRINGS = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
NUMBERS = st.one_of(st.integers(0, 10**9).map(str), st.integers(0, 2**32).map(hex))


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


VALUES = st.one_of(
    STRINGS.map(lambda s: (quote(s), [s], False)),
    NUMBERS.map(lambda n: (n, [n], False)),
    st.lists(st.one_of(STRINGS.map(lambda s: (quote(s), s)), NUMBERS.map(lambda n: (n, n))),
             max_size=4).flatmap(lambda items: st.booleans().map(lambda trailing: (
                 "[" + ",\n  ".join(t for t, _ in items) + ("," if trailing and items else "")
                 + "]", [v for _, v in items], True))),
)


@settings(max_examples=200)
@given(st.lists(st.tuples(NAMES, VALUES, st.sampled_from(["\n", ";", " # c\n", ";\n"])),
                max_size=8))
def test_settings_round_trip_last_wins(entries):
    text = "".join(f"{n} = {v[0]}{end}" for n, v, end in entries)
    cfg = xlcfg.parse(text, "t.cfg")
    expect = {}
    for n, (_, values, is_list), _end in entries:
        expect[n] = (values, is_list)
    assert {k: (s.values, s.is_list) for k, s in cfg.settings.items()} == expect


@given(STRINGS)
def test_escapes_round_trip(s):
    cfg = xlcfg.parse(f"extra = {quote(s)}\n")
    assert cfg.get_string("extra") == s


@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_config_error(text):
    try:
        cfg = xlcfg.parse(text, "f")
    except xlcfg.ConfigError as e:
        assert e.errno == 22 and e.messages
        assert all(m.startswith("f:") and "config parsing error near" in m for m in e.messages)
    else:
        assert isinstance(cfg.settings, dict)


def test_numbers_and_lookups():
    cfg = xlcfg.parse('memory = 512\nmaxmem=0x400\nname="g1"\nvif=["a","b",]\nmode=010\n', "c")
    assert cfg.get_long("memory") == 512 and cfg.get_long("maxmem") == 1024
    assert cfg.get_long("mode") == 8
    assert cfg.get_string("name") == "g1"
    assert cfg.get_list("vif") == ["a", "b"]
    assert cfg.get_long("missing") is None and cfg.warnings == []
    assert cfg.get_long("vif") is None
    assert cfg.warnings == ["c:4: warning: parameter `vif' is a list but should be a single value"]
    assert cfg.get_long("name") is None
    assert cfg.warnings[-1] == "c:3: warning: parameter `name' is not a valid number"


@pytest.mark.parametrize("text, message", [
    ("name = g1\n", "c:1: config parsing error near `g1': syntax error, unexpected IDENT, "
                    "expecting STRING or NUMBER or '['"),
    ('name "g1"\n', "c:1: config parsing error near `\"g1\"': syntax error, unexpected STRING, "
                    "expecting '='"),
    ("memory = 5 6\n", "c:1: config parsing error near `6': syntax error, unexpected NUMBER, "
                       "expecting NEWLINE or ';'"),
    ('x = ["a" "b"]\n', "c:1: config parsing error near `\"b\"': syntax error, unexpected "
                        "STRING, expecting NEWLINE or ']' or ','"),
    ('x = "open\n', "c:1: config parsing error near `\"': syntax error, unexpected '\"', "
                    "expecting STRING or NUMBER or '['"),
])
def test_syntax_errors_in_libxlu_words(text, message):
    with pytest.raises(xlcfg.ConfigError) as e:
        xlcfg.parse(text, "c")
    assert e.value.messages[0] == message


def test_errors_recover_at_next_line_and_all_are_reported():
    with pytest.raises(xlcfg.ConfigError) as e:
        xlcfg.parse("a = b\nok = 1\nc = d\n", "c")
    assert [m.split(":")[1] for m in e.value.messages] == ["1", "3"]
