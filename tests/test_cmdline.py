"""next_arg, parameq and the boot-time command line flow (lib/cmdline.c next_arg, init/main.c unknown_bootoption, and what a 6.1 kernel did)."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmodemu.kernel.cmdline import SPACES, next_arg, skip_spaces, tokenize
from kmodemu.kernel.init_main import MAX_INIT_ARGS, parse_boot_cmdline
from kmodemu.kernel.params import Param, ParamSpec, parameq, parameqn

# ------------------------------------------------------------------ next_arg

# next_arg cases (lib/cmdline.c), then the quote cases seen on a 6.1 kernel.
NEXT_ARG_CASES = [
    ("foo=bar", "foo", "bar"),
    ('foo="a b"', "foo", "a b"),
    ('"foo=a b"', "foo", "a b"),
    ('foo=a"b c"d', "foo", 'a"b c"d'),
    ('foo="bar"baz', "foo", 'bar"baz'),
    ('"foo"', "foo", None),
    ("foo", "foo", None),
    ("foo=", "foo", ""),
    ("foo==x", "foo", "=x"),
    ("=foo", "=foo", None),
    ("=a=b", "=a", "b"),
    ('foo="unterminated rest of line', "foo", "unterminated rest of line"),
    ('"baz=a b"', "baz", "a b"),
    ('"a b"=c', 'a b"', "c"),
    ('""', "", None),
    ('"', "", None),
    ("=", "=", None),
    ("==", "=", ""),
    ('foo="', "foo", ""),
    ('foo=""', "foo", ""),
    ('"foo="', "foo", ""),
    ('"foo"=x', 'foo"', "x"),
    ('a"b', 'a"b', None),
    ('"--"', "--", None),
    ("--=x", "--", "x"),
    ('"==""', "=", ""),            # three quotes removed
    ('"x=a"b"', "x", 'a"b'),
]


@pytest.mark.parametrize("word,name,value", NEXT_ARG_CASES)
def test_next_arg_table(word, name, value):
    got_name, got_value, nxt = next_arg(word, 0)
    assert (got_name, got_value) == (name, value)
    assert nxt == len(word)


def test_next_arg_positions_and_blanks():
    s = 'a=1 \t\n b "c d"  e="x\ty"\x0bf\x0c\rg\xa0h'
    assert tokenize(s) == [("a", "1"), ("b", None), ("c d", None), ("e", "x\ty"),
                           ("f", None), ("g", None), ("h", None)]
    name, value, nxt = next_arg("foo=bar   baz", 0)
    assert (name, value, nxt) == ("foo", "bar", 10)
    assert next_arg("foo=bar   baz", nxt) == ("baz", None, 13)


def test_unbalanced_quote_swallows_rest():
    assert tokenize('x "abc def') == [("x", None), ("abc def", None)]
    assert tokenize('a="b c -- d=e f') == [("a", "b c -- d=e f")]


def test_quotes_toggle_anywhere():
    assert tokenize('a"b c"d e') == [('a"b c"d', None), ("e", None)]
    assert tokenize('x=a"b c" y') == [("x", 'a"b c"'), ("y", None)]


WORD = st.text(alphabet="ab=_-.x", min_size=1, max_size=6)
BLANK = st.text(alphabet=" \t\n", min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.lists(WORD, max_size=8), BLANK, BLANK)
def test_unquoted_words_round_trip(words, sep, edge):
    line = edge + sep.join(words) + edge
    rebuilt = [n if v is None else f"{n}={v}" for n, v in tokenize(line)]
    assert rebuilt == words


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='ab="= \t', max_size=16))
def test_next_arg_only_drops_quotes(line):
    """Each word keeps every character of its stretch of the line except
    removed quote marks; what follows it is blanks only."""
    pos = skip_spaces(line)
    while pos < len(line):
        name, value, nxt = next_arg(line, pos)
        assert nxt > pos
        seg = line[pos:nxt].replace('"', "")
        word = (name if value is None else f"{name}={value}").replace('"', "")
        assert seg.startswith(word)
        assert all(c in SPACES for c in seg[len(word):])
        dropped = line[pos:nxt].count('"') - (name + (value or "")).count('"')
        assert 0 <= dropped <= 3     # word's opening, value's opening, last char
        pos = nxt


# ------------------------------------------------------------------- parameq

def test_parameq():
    assert parameq("foo_bar", "foo-bar")
    assert parameq("xen-tmem.frontswap", "xen_tmem.frontswap")
    assert parameq("-", "_")
    assert not parameq("foo.bar", "foo_bar")
    assert not parameq("foo", "foob")
    assert not parameq("Foo", "foo")
    assert parameqn("nosmpfoo", "nosmp", 5)
    assert parameqn("no-smp", "no_smp=", 6)
    assert not parameqn("no", "nosmp", 5)         # the NUL takes part


# ---------------------------------------------------------------- boot flow

class Boot:
    """A small kernel: a few early params, __setup entries and built-in params."""

    def __init__(self):
        self.calls: list[tuple[str, object]] = []
        self.builtin = {
            "printk.time": Param(ParamSpec("time", "bool"), "printk.time"),
            "tcp_cubic.beta": Param(ParamSpec("beta", "int", default=717), "tcp_cubic.beta"),
            "x.arr": Param(ParamSpec("arr", "array of int", max_count=2), "x.arr"),
            "x.name": Param(ParamSpec("name", "string", default="old", maxlen=5), "x.name"),
            "x.on": Param(ParamSpec("on", "bool"), "x.on"),
            "x.late": Param(ParamSpec("late", "int", level=7), "x.late"),
            "x.danger": Param(ParamSpec("danger", "int", unsafe=True), "x.danger"),
            "nosoftlockup": Param(ParamSpec("nosoftlockup", "bint")),  # a core_param
        }

    def early(self):
        def rec(name, ok=lambda v: True):
            return lambda v: (self.calls.append((name, v)), 0 if ok(v) else -errno.EINVAL)[1]
        return {"mem": rec("mem", lambda v: v is not None), "quiet": rec("quiet"),
                "debug": rec("debug"), "loglevel": rec("loglevel"),
                "earlycon": rec("earlycon"), "early_x_y": rec("early_x_y")}

    def setup(self):
        def rec(name, ret=1, need_empty=False):
            def handler(rest):
                self.calls.append((name, rest))
                return 0 if need_empty and rest else ret
            return handler
        return [("console=", rec("console=")), ("root=", rec("root=")),
                ("ro", rec("ro", need_empty=True)), ("rootwait", rec("rootwait", need_empty=True)),
                ("norandmaps", rec("norandmaps")), ("decline=", rec("decline0", ret=0)),
                ("decline=", rec("decline1")), ("oldopt=", None),
                ("nmi_watchdog=", rec("nmi_watchdog="))]

    def lookup(self, name):
        for key, p in self.builtin.items():
            if parameq(name, key):
                return p
        return None

    def __call__(self, line, **kw):
        return parse_boot_cmdline(line, early=self.early(), setup=self.setup(),
                                  params=self.lookup, **kw)


def boot(line):
    return Boot()(line)


def notice(*words):
    return f"Unknown kernel command line parameters \"{' '.join(words)}\", will be passed to user space."


def test_plain_unknowns_go_to_init():
    b = boot("a x=1 b a x=2 y=3")
    assert b.argv == ["init", "a", "b", "a"]
    assert b.envp == ["HOME=/", "TERM=linux", "x=2", "y=3"]
    assert b.unknown_notice == notice("a", "b", "a", "x=2", "y=3")
    assert b.messages == [b.unknown_notice] and b.panic is None


def test_no_notice_when_nothing_unknown():
    b = boot("console=ttyS0 root=/dev/vda ro quiet")
    assert b.unknown_notice is None and b.messages == []
    assert b.argv == ["init"] and b.envp == ["HOME=/", "TERM=linux"]


def test_dashes_everything_after_is_argv_and_second_dashes_end_it():
    k = Boot()
    b = k("a -- b mem loglevel=1 init=/x printk.time=0 -- c d=1")
    assert b.argv == ["init", "a", "b", "mem", "loglevel=1", "init=/x", "printk.time=0"]
    assert b.init is None and k.calls == []       # nothing after -- is applied
    assert k.builtin["printk.time"].value is False
    assert b.unknown_notice == notice("a")         # only words before --
    assert boot('a "--" b=2').argv == ["init", "a", "b=2"]
    assert boot("a -- b -- c d=1").argv == ["init", "a", "b"]
    assert boot("a --=x").envp[2:] == ["--=x"]


def test_quotes_reach_init_as_the_kernel_strips_them():
    b = boot('"baz=a b" foo="a b" q=a"b c"d "a b"=c x "abc def')
    assert b.envp[2:] == ["baz=a b", "foo=a b", 'q=a"b c"d', 'a b"=c']
    assert b.argv == ["init", "x", "abc def"]
    assert boot('""').argv == ["init", ""]
    assert boot('""').unknown_notice == notice("")


def test_leading_equals_is_not_a_separator():
    b = boot("=foo = =a=b ==")
    assert b.argv == ["init", "=foo", "="]
    assert b.envp[2:] == ["=a=b", "=="]


@pytest.mark.parametrize("word", ["./x", "..", "1.5", ".lead=1", "trail.=2", "zswap.nosuch=1",
                                  "Printk.time=0", "modprobe.blacklist=a,b"])
def test_dotted_names_vanish_silently(word):
    b = boot(word)
    assert b.argv == ["init"] and b.envp == ["HOME=/", "TERM=linux"]
    assert b.messages == []


def test_dots_in_values_are_fine():
    assert boot("X=/a.b").envp[2:] == ["X=/a.b"]


def test_boot_loader_words_dropped():
    b = boot("BOOT_IMAGE=/boot/vmlinuz-6.1 kexec kexecfoo=1 BOOT_IMAGE")
    assert b.argv == ["init", "BOOT_IMAGE"] and b.envp[2:] == []


def test_init_and_rdinit_discard_earlier_bare_words():
    b = boot("a b=1 c init=/bin/sh d e=2")
    assert b.init == "/bin/sh" and b.argv == ["init", "d"]
    assert b.envp[2:] == ["b=1", "e=2"]
    b = boot("a rdinit=/sbin/x d init=/y")
    assert b.rdinit == "/sbin/x" and b.init == "/y" and b.argv == ["init"]
    assert b.unknown_notice is None


def test_env_replace_in_place_and_home_term():
    b = boot("A=1 HOME=/root B=2 A=3 TERM=vt100 foo-bar=1 foo_bar=2 w w")
    assert b.envp == ["HOME=/root", "TERM=vt100", "A=3", "B=2", "foo-bar=1", "foo_bar=2"]
    assert b.argv == ["init", "w", "w"]
    assert b.unknown_notice == notice("w", "w", "A=3", "B=2", "foo-bar=1", "foo_bar=2")


def test_builtin_params_with_dash_underscore():
    k = Boot()
    b = k("tcp-cubic.beta=700 printk.time=1 x.on nosoftlockup")
    assert k.builtin["tcp_cubic.beta"].value == 700
    assert k.builtin["printk.time"].value is True and k.builtin["x.on"].value is True
    assert k.builtin["nosoftlockup"].value == 1
    assert b.messages == [] and b.argv == ["init"]


@pytest.mark.parametrize("word,value", [("0x20", 32), ("010", 8), ("+5", 5)])
def test_builtin_integers(word, value):
    k = Boot()
    k(f"tcp_cubic.beta={word}")
    assert k.builtin["tcp_cubic.beta"].value == value


@pytest.mark.parametrize("word", ["yes", "on", "1", "true"])
def test_builtin_bools(word):
    k = Boot()
    k(f"printk.time={word}")
    assert k.builtin["printk.time"].value is True


def test_bad_values_log_keep_old_and_pass_nothing():
    k = Boot()
    b = k("tcp_cubic.beta=abc x.arr=1,2,3 x.name=toolong tcp_cubic.beta z")
    assert b.messages == [
        "Booting kernel: `abc' invalid for parameter `tcp_cubic.beta'",
        "x.arr: can only take 2 arguments",
        "Booting kernel: `1' invalid for parameter `x.arr'",
        "x.name: string doesn't fit in 4 chars.",
        "Booting kernel: `toolong' too large for parameter `x.name'",
        "Booting kernel: `' invalid for parameter `tcp_cubic.beta'",
        notice("z"),
    ]
    assert k.builtin["tcp_cubic.beta"].value == 717
    assert k.builtin["x.arr"].value == [1, 2]
    assert k.builtin["x.name"].value == "old"
    assert b.argv == ["init", "z"] and b.envp[2:] == []


def test_error_before_dashes_drops_init_args():
    """parse_args returns the error instead of the text after "--"."""
    assert boot("tcp_cubic.beta=x -- a b").argv == ["init"]
    assert boot("-- a tcp_cubic.beta=x").argv == ["init", "a", "tcp_cubic.beta=x"]
    assert boot("tcp_cubic.beta=1 -- a").argv == ["init", "a"]


def test_level_params_skipped_at_boot():
    k = Boot()
    b = k("x.late=notanumber")
    assert b.messages == [] and k.builtin["x.late"].value == 0


def test_unsafe_builtin_taints():
    k = Boot()
    taints = []
    b = k("x.danger=3", taint=lambda: taints.append(1))
    assert b.messages == ["Setting dangerous option x.danger - tainting kernel"]
    assert b.tainted and taints == [1] and k.builtin["x.danger"].value == 3


def test_setup_prefix_matching():
    k = Boot()
    b = k("norandmapsXYZ console=ttyS0,115200 root=/dev/vda rootwait ro roX quiet= quietly")
    assert ("norandmaps", "XYZ") in k.calls
    assert ("console=", "ttyS0,115200") in k.calls and ("root=", "/dev/vda") in k.calls
    assert b.argv == ["init", "roX", "quietly"]      # "ro" declines a suffix
    assert b.envp[2:] == []                          # quiet= counted as the early param


def test_setup_first_handler_returning_one_wins():
    k = Boot()
    k("decline=v")
    assert [c for c in k.calls if c[0].startswith("decline")] == [("decline0", "v"), ("decline1", "v")]


def test_setup_dash_underscore_prefix():
    k = Boot()
    b = k("nmi-watchdog=0")
    assert ("nmi_watchdog=", "0") in k.calls and b.envp[2:] == []


def test_obsolete_setup():
    b = boot("oldopt=1 oldopt")
    assert b.messages == ["Parameter oldopt= is obsolete, ignored", notice("oldopt")]
    assert b.envp[2:] == []


def test_early_params():
    k = Boot()
    b = k("mem mem=1G memx=2 loglevel=7 early-x-y=1 debug console=ttyS0")
    assert b.messages == ["Malformed early option 'mem'", notice("memx=2")]
    assert ("mem", None) in k.calls and ("mem", "1G") in k.calls
    assert ("loglevel", "7") in k.calls and ("early_x_y", "1") in k.calls
    assert ("earlycon", "ttyS0") in k.calls           # console= is offered to earlycon
    assert b.argv == ["init"] and b.envp[2:] == ["memx=2"]


def test_early_params_case_sensitive():
    b = boot("Quiet DEBUG=1")
    assert b.argv == ["init", "Quiet"] and b.envp[2:] == ["DEBUG=1"]


def test_init_arg_limit():
    words = [f"a{i}" for i in range(1, MAX_INIT_ARGS + 1)]
    b = boot(" ".join(words))
    assert b.panic is None and b.argv == ["init"] + words
    b = boot(" ".join(words + ["a33", "a34", "e=1"]))
    assert b.panic == "Too many boot init vars at `a33'"
    assert b.unknown_notice is None and b.messages == []
    assert b.envp[2:] == []                          # later words dropped


def test_env_limit():
    envs = [f"e{i}=1" for i in range(1, 32)]
    b = boot(" ".join(envs))
    assert b.panic is None and len(b.envp) == 33
    b = boot(" ".join(envs + ["e32=1", "w"]))
    assert b.panic == "Too many boot env vars at `e32=1'"
    assert b.argv == ["init"] and b.unknown_notice is None


def test_limit_after_dashes():
    b = boot("-- " + " ".join(f"a{i}" for i in range(1, 34)))
    assert b.panic == "Too many boot init vars at `a33'" and len(b.argv) == 33
    b = boot(" ".join(f"w{i}" for i in range(1, 33)) + " -- x")
    assert b.panic == "Too many boot init vars at `x'"
    assert b.unknown_notice is not None               # the notice came first


def test_init_clears_after_limit_words_count_again():
    words = " ".join(f"a{i}" for i in range(1, 20))
    b = boot(f"{words} init=/sbin/init b1 b2")
    assert b.argv == ["init", "b1", "b2"] and b.panic is None


def test_tabs_separate_at_boot():
    b = boot("a\tb=1\t\tc")
    assert b.argv == ["init", "a", "c"] and b.envp[2:] == ["b=1"]
