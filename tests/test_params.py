"""kstrto*, ParamSpec/Param and parse_args against kernel/params.c behaviour (parse_args, param_set_*, lib/kstrtox.c)."""

from __future__ import annotations

import errno
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmodemu.errors import KernelError
from kmodemu.kernel.params import (
    INT_TYPES,
    Param,
    ParamSpec,
    kstrtobool,
    kstrtoint,
    parse_args,
)


def err_of(fn, *args):
    with pytest.raises(KernelError) as ei:
        fn(*args)
    return ei.value.errno


# ---------------------------------------------------------------- kstrtoint

@pytest.mark.parametrize("text,bits,signed,value", [
    ("0x1F", 32, True, 31),
    ("0X1f", 32, True, 31),
    ("010", 32, True, 8),
    ("0", 32, False, 0),
    ("00", 32, False, 0),
    ("+5", 32, True, 5),
    ("+5", 32, False, 5),
    ("-0", 32, True, 0),
    ("5\n", 32, True, 5),
    ("0x20", 32, False, 32),
    ("255", 8, False, 255),
    ("-32768", 16, True, -32768),
    ("32767", 16, True, 32767),
    ("65535", 16, False, 65535),
    ("-2147483648", 32, True, -2147483648),
    ("4294967295", 32, False, 4294967295),
    ("-9223372036854775808", 64, True, -(1 << 63)),
    ("9223372036854775807", 64, True, (1 << 63) - 1),
    ("18446744073709551615", 64, False, (1 << 64) - 1),
    ("0xffffffffffffffff", 64, False, (1 << 64) - 1),
    ("-0x10", 32, True, -16),
])
def test_kstrtoint_accepts(text, bits, signed, value):
    assert kstrtoint(text, bits, signed) == value


@pytest.mark.parametrize("text,bits,signed,err", [
    ("08", 32, True, errno.EINVAL),        # 8 is no octal digit
    ("0x", 32, True, errno.EINVAL),        # "0x" without a hex digit is octal 0 + junk
    ("0xg", 32, True, errno.EINVAL),
    ("10k", 32, True, errno.EINVAL),
    (" 5", 32, True, errno.EINVAL),
    ("5 ", 32, True, errno.EINVAL),
    ("5\n\n", 32, True, errno.EINVAL),
    ("\n", 32, True, errno.EINVAL),
    ("", 32, True, errno.EINVAL),
    ("+", 32, True, errno.EINVAL),
    ("-", 32, True, errno.EINVAL),
    ("-+5", 32, True, errno.EINVAL),
    ("+-5", 32, True, errno.EINVAL),
    ("++5", 32, True, errno.EINVAL),
    ("-1", 32, False, errno.EINVAL),       # no sign for unsigned types
    ("-0", 32, False, errno.EINVAL),
    ("300", 8, False, errno.ERANGE),
    ("256", 8, False, errno.ERANGE),
    ("32768", 16, True, errno.ERANGE),
    ("-32769", 16, True, errno.ERANGE),
    ("65536", 16, False, errno.ERANGE),
    ("2147483648", 32, True, errno.ERANGE),
    ("4294967296", 32, False, errno.ERANGE),
    ("9223372036854775808", 64, True, errno.ERANGE),
    ("-9223372036854775809", 64, True, errno.ERANGE),
    ("18446744073709551616", 64, False, errno.ERANGE),
    ("99999999999999999999999x", 64, False, errno.ERANGE),  # overflow seen before junk
    ("1.5", 32, True, errno.EINVAL),
    ("٣", 32, True, errno.EINVAL),          # only ASCII digits
])
def test_kstrtoint_rejects(text, bits, signed, err):
    assert err_of(kstrtoint, text, bits, signed) == err


def _range(bits, signed):
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _c_formats(v):
    """How a C programmer would write v: decimal, 0x-hex, 0-octal."""
    sign = "-" if v < 0 else ""
    a = abs(v)
    out = [str(v), f"{sign}{a:#x}", f"{sign}{a:#X}", f"+{v}" if v >= 0 else str(v)]
    out.append(f"{sign}0{a:o}" if a else "0")
    return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(set(INT_TYPES.values()))), st.data())
def test_kstrtoint_accepts_c_formatting_in_range(bs, data):
    bits, signed = bs
    lo, hi = _range(bits, signed)
    v = data.draw(st.integers(lo, hi))
    for text in _c_formats(v):
        assert kstrtoint(text, bits, signed) == v
        assert kstrtoint(text + "\n", bits, signed) == v


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(set(INT_TYPES.values()))), st.data())
def test_kstrtoint_out_of_range_is_erange(bs, data):
    bits, signed = bs
    lo, hi = _range(bits, signed)
    v = data.draw(st.one_of(st.integers(hi + 1, hi + (1 << 70)),
                            st.integers(lo - (1 << 70), lo - 1) if signed else st.nothing()))
    for text in _c_formats(v):
        assert err_of(kstrtoint, text, bits, signed) == errno.ERANGE


_C_LITERAL = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\n?")


def _c_value(text):
    body = text.rstrip("\n").lstrip("+-")
    base = 16 if body[:2].lower() == "0x" else 8 if body[:1] == "0" else 10
    v = int(body, base)
    return -v if text.startswith("-") else v


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="+-0123456789abcdefxX \n", max_size=8))
def test_kstrtoint_accepts_exactly_c_literals(text):
    ok = _C_LITERAL.fullmatch(text) is not None
    try:
        v = kstrtoint(text, 64, True)
    except KernelError as e:
        assert e.errno == errno.EINVAL and not ok or e.errno == errno.ERANGE
        return
    assert ok and v == _c_value(text)


# --------------------------------------------------------------- kstrtobool

@pytest.mark.parametrize("text,value", [
    ("y", True), ("Y", True), ("yes", True), ("yep", True), ("1", True), ("1abc", True),
    ("t", True), ("T", True), ("true", True), ("on", True), ("ON", True), ("oN", True),
    ("n", False), ("N", False), ("no", False), ("nope", False), ("0", False),
    ("f", False), ("F", False), ("false", False), ("off", False), ("OFF", False), ("oF", False),
    ("y\n", True), ("0\n", False),
])
def test_kstrtobool_words(text, value):
    assert kstrtobool(text) is value


@pytest.mark.parametrize("text", ["", "o", "O", "2", "x", "enable", "disable", "e", "d",
                                  " y", "\ny", "ox", None])
def test_kstrtobool_rejects(text):
    assert err_of(kstrtobool, text) == errno.EINVAL


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2), st.text(max_size=6))
def test_kstrtobool_looks_at_two_chars_at_most(head, tail):
    def res(s):
        try:
            return kstrtobool(s)
        except KernelError:
            return "EINVAL"
    if len(head) == 2:
        assert res(head) == res(head + tail)


# ---------------------------------------------------------------- ParamSpec

@pytest.mark.parametrize("perm", [0, 0o400, 0o444, 0o644, 0o600, 0o664, 0o640, 0o660, 0o200, 0o220])
def test_perm_accepted(perm):
    assert ParamSpec("p", "int", perm).perm == perm


@pytest.mark.parametrize("perm", [0o1000, -1, 0o666, 0o777, 0o646, 0o602, 0o044, 0o004, 0o464,
                                  0o020, 0o240, 0o404 - 0o400 + 0o040])
def test_perm_rejected_like_verify_octal_permissions(perm):
    with pytest.raises(ValueError):
        ParamSpec("p", "int", perm)


@pytest.mark.parametrize("kw", [
    dict(type="float"),
    dict(type="array of string"),
    dict(type="array of array of int", max_count=2),
    dict(type="array of int"),                 # no max_count
    dict(type="array of int", max_count=0),
    dict(type="string"),                       # no maxlen
    dict(type="string", maxlen=4, default="abcd"),
    dict(type="int", maxlen=4),
    dict(type="int", max_count=4),
    dict(type="byte", default=256),
    dict(type="uint", default=-1),
    dict(type="bool", default=1),
    dict(type="array of int", max_count=2, default=[1, 2, 3]),
    dict(type="array of byte", max_count=2, default=[1, 300]),
])
def test_spec_build_errors(kw):
    with pytest.raises(ValueError):
        ParamSpec("p", **kw)


@pytest.mark.parametrize("name", ["", "a b", "a=b", 'a"'])
def test_spec_bad_names(name):
    with pytest.raises(ValueError):
        ParamSpec(name, "int")


def test_spec_modinfo_type_and_noarg():
    assert ParamSpec("a", "array of int", max_count=4).modinfo_type == "array of int"
    assert ParamSpec("s", "string", maxlen=8).modinfo_type == "string"
    assert ParamSpec("c", "charp").modinfo_type == "charp"
    assert ParamSpec("h", "hexint").modinfo_type == "hexint"
    assert ParamSpec("b", "bool", callback=True).modinfo_type is None
    assert [t for t in ("bool", "invbool", "bint", "int", "charp")
            if ParamSpec("x", t).noarg] == ["bool", "bint"]
    assert not ParamSpec("a", "array of bool", max_count=2).noarg


def test_spec_is_hashable_and_immutable():
    s = ParamSpec("a", "array of int", 0o644, "desc", [1, 2], max_count=4)
    assert s.default == (1, 2)
    assert hash(s) == hash(ParamSpec("a", "array of int", 0o644, "desc", (1, 2), max_count=4))
    with pytest.raises(AttributeError):
        s.name = "b"


# -------------------------------------------------------------- Param values

def P(type_, default=None, **kw):
    return Param(ParamSpec("p", type_, 0o644, "", default, **kw))


def test_bool():
    p = P("bool")
    assert p.value is False and p.get() == "N\n"
    p.set(None)
    assert p.value is True and p.get() == "Y\n"
    p.set("off")
    assert p.get() == "N\n"
    assert err_of(p.set, "") == errno.EINVAL


def test_invbool_stores_inverted_and_needs_a_value():
    p = P("invbool")
    assert p.get() == "Y\n"        # stored false shows Y
    p.set("1")
    assert p.value is False and p.get() == "Y\n"
    p.set("n")
    assert p.value is True and p.get() == "N\n"
    assert err_of(p.set, None) == errno.EINVAL


def test_bint():
    p = P("bint", 5)
    assert p.get() == "5\n"
    p.set(None)
    assert p.value == 1 and p.get() == "1\n"
    p.set("no")
    assert p.value == 0 and p.get() == "0\n"


@pytest.mark.parametrize("value,text", [(0, "00000000\n"), (255, "0x0000ff\n"), (1, "0x000001\n"),
                                        (0x12345678, "0x12345678\n"), (0xFFFFFFFF, "0xffffffff\n")])
def test_hexint_output_quirk(value, text):
    p = P("hexint")
    p.set(str(value))              # decimal input works
    assert p.value == value and p.get() == text


def test_integer_types():
    p = P("byte")
    p.set("255")
    assert p.get() == "255\n"
    assert err_of(p.set, "300") == errno.ERANGE and p.value == 255
    assert err_of(p.set, "08") == errno.EINVAL
    assert err_of(p.set, None) == errno.EINVAL
    q = P("short")
    q.set("-5")
    assert q.get() == "-5\n"
    r = P("ullong")
    r.set("0xffffffffffffffff")
    assert r.get() == "18446744073709551615\n"
    s = P("long")
    s.set("-9223372036854775808")
    assert s.get() == "-9223372036854775808\n"


def test_charp():
    p = P("charp")
    assert p.value is None and p.get() == "(null)\n"
    p.set("")
    assert p.value == "" and p.get() == "\n"
    p.set("x" * 1024)
    assert p.value == "x" * 1024
    log = []
    assert err_of(lambda: p.set("y" * 1025, "m", log.append)) == errno.ENOSPC
    assert log == ["p: string parameter too long"]
    assert p.value == "x" * 1024
    assert err_of(p.set, None) == errno.EINVAL


def test_string_buffer():
    p = P("string", "abc", maxlen=5)
    assert p.get() == "abc\n"
    p.set("abcd")
    log = []
    assert err_of(lambda: p.set("abcde", "m", log.append)) == errno.ENOSPC
    assert log == ["p: string doesn't fit in 4 chars."]
    assert p.value == "abcd"
    assert err_of(p.set, None) == errno.EINVAL


def test_setter_messages_use_the_kernel_param_name():
    p = Param(ParamSpec("opt", "string", maxlen=3), name="mymod.opt")
    log = []
    with pytest.raises(KernelError):
        p.set("abc", printk=log.append)
    assert log == ["mymod.opt: string doesn't fit in 2 chars."]


def test_array_basic_and_count():
    p = P("array of int", max_count=3)
    assert p.value == [] and p.get() == ""        # empty array: not even a newline
    p.set("1,0x10,-3")
    assert p.value == [1, 16, -3] and p.get() == "1,16,-3\n"
    p.set("7")
    assert p.value == [7] and p.get() == "7\n"   # last occurrence replaces the whole array


def test_array_too_many_keeps_first_max():
    p = P("array of int", max_count=2)
    log = []
    assert err_of(lambda: p.set("1,2,3", "m", log.append)) == errno.EINVAL
    assert log == ["p: can only take 2 arguments"]
    assert p.value == [1, 2]


def test_array_bad_element_keeps_earlier_ones():
    p = P("array of int", [1, 2, 3], max_count=3)
    assert err_of(p.set, "4,x,6") == errno.EINVAL
    assert p.value == [4]            # count drops to the elements parsed
    q = P("array of byte", max_count=3, with_num=False)
    assert err_of(q.set, "1,300") == errno.ERANGE
    assert q.value == [1, 0, 0] and q.get() == "1,0,0\n"


def test_array_without_count_shows_all():
    p = P("array of hexint", max_count=3, with_num=False)
    assert p.get() == "00000000,00000000,00000000\n"
    p.set("255")
    assert p.get() == "0x0000ff,00000000,00000000\n"


def test_array_edge_cases():
    p = P("array of int", max_count=3)
    assert err_of(p.set, "") == errno.EINVAL       # one empty element
    assert err_of(p.set, None) == errno.EINVAL     # arrays are never NOARG
    assert err_of(p.set, "1,") == errno.EINVAL
    c = P("array of charp", max_count=3)
    c.set("")
    assert c.value == [""] and c.get() == "\n"
    c.set('a,"b c"')
    assert c.value == ["a", '"b c"']
    b = P("array of bool", max_count=2)
    b.set("y,off")
    assert b.get() == "Y,N\n"
    assert err_of(b.set, "y,") == errno.EINVAL


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["byte", "short", "ushort", "int", "uint", "long", "ulong", "ullong"]),
       st.data())
def test_array_roundtrip(elem, data):
    bits, signed = INT_TYPES[elem]
    lo, hi = _range(bits, signed)
    xs = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=6))
    p = P(f"array of {elem}", max_count=6)
    p.set(",".join(map(str, xs)))
    assert p.value == xs
    again = P(f"array of {elem}", max_count=6)
    again.set(p.get())             # sysfs text (with its newline) feeds back
    assert again.value == xs


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=4))
def test_bool_array_roundtrip(xs):
    p = P("array of bool", max_count=4)
    p.set(",".join("Y" if x else "N" for x in xs))
    assert p.value == xs
    q = P("array of bool", max_count=4)
    q.set(p.get())
    assert q.value == xs


# --------------------------------------------------------------------- sysfs

def test_sysfs_write_rules():
    p = Param(ParamSpec("n", "int", 0o644))
    p.write_sysfs("5\n")
    assert p.read_sysfs() == "5\n"
    p.write_sysfs("")                              # empty write never reaches set
    assert p.value == 5
    assert err_of(p.write_sysfs, "x\n") == errno.EINVAL
    ro = Param(ParamSpec("n", "int", 0o444))
    assert err_of(ro.write_sysfs, "1") == errno.EACCES
    hidden = Param(ParamSpec("n", "int", 0))
    assert err_of(hidden.write_sysfs, "1") == errno.ENOENT
    assert err_of(hidden.read_sysfs) == errno.ENOENT
    wo = Param(ParamSpec("n", "int", 0o200))
    wo.write_sysfs("3")
    assert err_of(wo.read_sysfs) == errno.EACCES


def test_sysfs_charp_keeps_the_newline():
    p = Param(ParamSpec("s", "charp", 0o644))
    p.write_sysfs("abc\n")
    assert p.value == "abc\n" and p.get() == "abc\n\n"


def test_sysfs_unsafe_taints():
    p = Param(ParamSpec("d", "int", 0o644, unsafe=True), name="m.d")
    log, taints = [], []
    p.write_sysfs("1", log.append, lambda: taints.append(1))
    assert log == ["Setting dangerous option m.d - tainting kernel"] and taints == [1]


# ---------------------------------------------------------------- parse_args

def table(**specs):
    return {name: Param(ParamSpec(name, *s) if isinstance(s, tuple) else ParamSpec(name, s))
            for name, s in specs.items()}


def run(args, params, **kw):
    log = []
    ret = parse_args("zcache", args, params, printk=log.append, **kw)
    return ret, log


def test_parse_args_messages_exact():
    t = table(max_pages="int", flag="bool")
    t["name"] = Param(ParamSpec("name", "string", maxlen=4))
    ret, log = run("max_pages=abc nosuch name=toolong max_pages flag", t)
    assert log == [
        "zcache: `abc' invalid for parameter `max_pages'",
        "zcache: Unknown parameter `nosuch'",
        "name: string doesn't fit in 3 chars.",
        "zcache: `toolong' too large for parameter `name'",
        "zcache: `' invalid for parameter `max_pages'",
    ]
    assert ret == (-errno.EINVAL, None)            # the last error
    assert t["flag"].value is True                 # later params still applied


def test_parse_args_last_error_wins():
    t = table(a="byte", b="int")
    (err, _), log = run("a=300 b=x", t)
    assert err == -errno.EINVAL
    (err, _), log = run("b=x a=300 b=4", t)
    assert err == -errno.ERANGE and t["b"].value == 4


def test_parse_args_dashes():
    t = table(a="int")
    assert run("a=1 -- b c ", t) == ((0, "b c "), [])
    assert run('  a=2   "--"  rest', t) == ((0, "rest"), [])
    assert run("a=3 --", t) == ((0, ""), [])
    (ret, log) = run("--=x a=4", t)
    assert ret == (-errno.ENOENT, None) and t["a"].value == 4
    assert log == ["zcache: Unknown parameter `--'"]
    # An error before "--" is returned instead of the rest.
    assert run("a=x -- more", t)[0] == (-errno.EINVAL, None)
    assert run("", t) == ((0, None), [])
    assert run(" \t ", t) == ((0, None), [])


def test_parse_args_dash_underscore_equivalence():
    t = table(max_pages="int")
    t2 = {"xen-tmem.frontswap": Param(ParamSpec("frontswap", "bool"))}
    assert run("max-pages=3", t)[0] == (0, None) and t["max_pages"].value == 3
    assert run("xen_tmem.frontswap=0 xen-tmem.frontswap", t2)[0] == (0, None)
    assert run("max.pages=3", t)[1] == ["zcache: Unknown parameter `max.pages'"]
    assert run("Max_pages=3", t)[1] == ["zcache: Unknown parameter `Max_pages'"]


def test_parse_args_unknown_callback_and_lookup_function():
    t = table(a="int")
    seen = []

    def unknown(name, value):
        seen.append((name, value))
        return -errno.EINVAL if name == "bad" else 0

    ret, log = run('x=1 "y=a b" bad=v bad z', t.get, unknown=unknown)
    assert seen == [("x", "1"), ("y", "a b"), ("bad", "v"), ("bad", None), ("z", None)]
    assert log == ["zcache: `v' invalid for parameter `bad'", "zcache: `' invalid for parameter `bad'"]
    assert ret == (-errno.EINVAL, None)


def test_parse_args_array_message_shows_first_element():
    t = {"arr": Param(ParamSpec("arr", "array of int", max_count=2))}
    ret, log = run("arr=1,2,3 arr=5,x", t)
    assert log == ["arr: can only take 2 arguments",
                   "zcache: `1' invalid for parameter `arr'",
                   "zcache: `5' invalid for parameter `arr'"]
    assert t["arr"].value == [5]


def test_parse_args_level_filter():
    t = {"a": Param(ParamSpec("a", "int", level=3)), "b": Param(ParamSpec("b", "int"))}
    ret, log = run("a=x b=1", t, level_filter=(-1, -1))
    assert ret == (0, None) and log == [] and t["a"].value == 0 and t["b"].value == 1
    ret, log = run("a=7 b=x", t, level_filter=(3, 3))
    assert ret == (0, None) and t["a"].value == 7 and t["b"].value == 1


def test_parse_args_unsafe_param_taints_each_set():
    t = {"d": Param(ParamSpec("d", "int", unsafe=True))}
    taints = []
    ret, log = run("d=1 d=x d", t, taint=lambda: taints.append(1))
    assert log == ["Setting dangerous option d - tainting kernel",
                   "Setting dangerous option d - tainting kernel",
                   "zcache: `x' invalid for parameter `d'",
                   "zcache: `' invalid for parameter `d'"]
    assert len(taints) == 2


def test_parse_args_repeated_param_last_wins_and_quotes():
    t = table(s="charp", n="int")
    assert run('s="a b" n=1 s=c"d e"f n=0x10', t)[0] == (0, None)
    assert t["s"].value == 'c"d e"f' and t["n"].value == 16
