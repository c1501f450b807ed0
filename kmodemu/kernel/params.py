"""Module and built-in parameters: kstrto*, the param_ops types and parse_args.

Models kernel/params.c and lib/kstrtox.c of a 6.x kernel (the behaviour a
6.1 kernel showed under QEMU wins, see docs/params-and-cmdline.md). Values are checked the way
the C setters check them, errors are KernelError with the kernel's errno,
and sysfs text is byte-for-byte what ``cat`` would show.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from kmodemu.errors import KernelError
from kmodemu.kernel.cmdline import next_arg, skip_spaces

Printk = Callable[[str], None]


# kernel/params.c's name comparison, used by parse_args and init/main.c.
def dash2underscore(c: str) -> str:
    return "_" if c == "-" else c


def parameqn(a: str, b: str, n: int) -> bool:
    """Compare the first ``n`` characters with ``-`` equal to ``_``.

    Like the C version the strings' terminating NUL takes part, so
    ``parameqn("ab", "abc", 3)`` is false.
    """
    a0 = (a + "\0")[:n].ljust(n, "\0")
    b0 = (b + "\0")[:n].ljust(n, "\0")
    return all(dash2underscore(x) == dash2underscore(y) for x, y in zip(a0, b0))


def parameq(a: str, b: str) -> bool:
    """Whole-name equality with ``-`` and ``_`` interchangeable (dots are not)."""
    return len(a) == len(b) and parameqn(a, b, len(a) + 1)


# name -> (bits, signed) for the integer param_ops.
INT_TYPES: dict[str, tuple[int, bool]] = {
    "byte": (8, False),
    "short": (16, True),
    "ushort": (16, False),
    "int": (32, True),
    "uint": (32, False),
    "long": (64, True),    # x86-64: long is 64 bits
    "ulong": (64, False),
    "ullong": (64, False),
    "hexint": (32, False),  # parsed by kstrtouint, printed %#08x
}
BOOL_TYPES = ("bool", "invbool", "bint")
SCALAR_TYPES = frozenset(INT_TYPES) | frozenset(BOOL_TYPES) | {"charp"}
# Types whose param_ops carry KERNEL_PARAM_OPS_FL_NOARG.
NOARG_TYPES = frozenset({"bool", "bint"})
ARRAY_PREFIX = "array of "
CHARP_MAX = 1024   # param_set_charp's limit
PAGE_SIZE = 4096   # one sysfs write at most


def _noop(msg: str) -> None:
    pass


# --------------------------------------------------------------------------
# lib/kstrtox.c


def _parse_ull(s: str) -> int:
    """_kstrtoull with base 0: radix prefix, digits, one optional trailing newline."""
    if s[:1] == "0":
        if s[1:2] in ("x", "X") and s[2:3] != "" and s[2:3] in "0123456789abcdefABCDEF":
            base, s = 16, s[2:]
        else:
            base = 8
    else:
        base = 10
    res = 0
    used = 0
    overflow = False
    for c in s:
        if "0" <= c <= "9":
            d = ord(c) - 48
        elif c in "abcdefABCDEF":
            d = ord(c.lower()) - 87
        else:
            break
        if d >= base:
            break
        res = res * base + d
        if res >> 64:
            overflow = True
            res &= (1 << 64) - 1
        used += 1
    if overflow:
        raise KernelError(errno.ERANGE)
    if used == 0:
        raise KernelError(errno.EINVAL)
    rest = s[used:]
    if rest[:1] == "\n":
        rest = rest[1:]
    if rest:
        raise KernelError(errno.EINVAL)
    return res


def kstrtoint(s: str, bits: int, signed: bool) -> int:
    """kstrto{u8,s16,u16,int,uint,ll,ull,...}(s, 0, &res) for a ``bits``-wide type.

    Raises KernelError(EINVAL) on syntax, KernelError(ERANGE) when the value
    does not fit (64-bit overflow is noticed before trailing garbage).
    """
    if signed and s[:1] == "-":
        tmp = _parse_ull(s[1:])
        if tmp > 1 << 63:
            raise KernelError(errno.ERANGE)
        value = -tmp
    else:
        tmp = _parse_ull(s[1:] if s[:1] == "+" else s)
        if signed and tmp >> 63:
            raise KernelError(errno.ERANGE)
        value = tmp
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    if not lo <= value <= hi:
        raise KernelError(errno.ERANGE)
    return value


def kstrtobool(s: str | None) -> bool:
    """kstrtobool of 6.x: judged on the first character (two for on/off).

    y/Y/t/T/1 are true, n/N/f/F/0 false, o/O followed by n/N or f/F give
    on/off; everything else (including "") is EINVAL.
    """
    if s is None:
        raise KernelError(errno.EINVAL)
    c = s[:1]
    if c and c in "yYtT1":
        return True
    if c and c in "nNfF0":
        return False
    if c and c in "oO":
        c2 = s[1:2]
        if c2 and c2 in "nN":
            return True
        if c2 and c2 in "fF":
            return False
    raise KernelError(errno.EINVAL)


# --------------------------------------------------------------------------
# Declarations


def _check_perm(perm: int) -> None:
    """VERIFY_OCTAL_PERMISSIONS: the compile-time checks on a param's mode."""
    if not isinstance(perm, int) or perm < 0 or perm > 0o777:
        raise ValueError(f"permission {perm!r} outside 0..0777")
    u, g, o = (perm >> 6) & 7, (perm >> 3) & 7, perm & 7
    if (u & 4) < (g & 4) or (g & 4) < (o & 4):
        raise ValueError(f"permission {perm:#o}: user >= group >= other readable violated")
    if (u & 2) < (g & 2):
        raise ValueError(f"permission {perm:#o}: group writable but not user writable")
    if o & 2:
        raise ValueError(f"permission {perm:#o}: other-writable is not allowed")


def _check_scalar_default(type_: str, value: Any, name: str) -> None:
    if type_ in ("bool", "invbool"):
        ok = isinstance(value, bool)
    elif type_ == "charp":
        ok = value is None or isinstance(value, str)
    elif type_ == "bint":
        ok = isinstance(value, int) and -(1 << 31) <= int(value) < (1 << 31)
    else:
        bits, signed = INT_TYPES[type_]
        lo = -(1 << (bits - 1)) if signed else 0
        hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    if not ok:
        raise ValueError(f"parameter {name}: default {value!r} does not fit type {type_}")


def _zero(type_: str) -> Any:
    if type_ in ("bool", "invbool"):
        return False
    if type_ == "charp":
        return None
    if type_ == "string":
        return ""
    return 0


@dataclass(frozen=True)
class ParamSpec:
    """One module_param*/core_param declaration, checked like the C macros would be.

    ``type`` is a param_ops name or ``"array of <scalar>"``; ``maxlen`` is the
    buffer size of a module_param_string, ``max_count`` the C array size.
    ``callback`` marks module_param_cb (no parmtype in modinfo), ``level``
    the initcall level of *_param_cb variants (-1 for plain params), and
    ``with_num`` whether module_param_array got a count pointer (without
    one sysfs always shows all ``max_count`` elements).
    """

    name: str
    type: str
    perm: int = 0o444
    desc: str = ""
    default: Any = None
    maxlen: int | None = None
    max_count: int | None = None
    unsafe: bool = False
    callback: bool = False
    level: int = -1
    with_num: bool = True

    def __init__(self, name: str, type: str, perm: int = 0o444, desc: str = "",
                 default: Any = None, *, maxlen: int | None = None,
                 max_count: int | None = None, unsafe: bool = False,
                 callback: bool = False, level: int = -1, with_num: bool = True):
        if isinstance(default, list):
            default = tuple(default)
        values = dict(name=name, type=type, perm=perm, desc=desc, default=default,
                      maxlen=maxlen, max_count=max_count, unsafe=unsafe,
                      callback=callback, level=level, with_num=with_num)
        for key, val in values.items():
            object.__setattr__(self, key, val)
        self._validate()

    @property
    def array_size(self) -> int:
        """``max_count`` of an array parameter (``_validate`` made it an int >= 1)."""
        if self.max_count is None:
            raise TypeError(f"parameter {self.name} is not an array")
        return self.max_count

    @property
    def buffer_size(self) -> int:
        """``maxlen`` of a string parameter (``_validate`` made it an int >= 1)."""
        if self.maxlen is None:
            raise TypeError(f"parameter {self.name} is not a string")
        return self.maxlen

    def _validate(self) -> None:
        if not self.name or any(c.isspace() or c in '="' for c in self.name):
            raise ValueError(f"bad parameter name {self.name!r}")
        _check_perm(self.perm)
        if self.is_array:
            elem = self.elem_type
            if elem not in SCALAR_TYPES:
                raise ValueError(f"parameter {self.name}: no array of {elem!r}")
            if not isinstance(self.max_count, int) or self.max_count < 1:
                raise ValueError(f"parameter {self.name}: arrays need max_count >= 1")
            if self.maxlen is not None:
                raise ValueError(f"parameter {self.name}: maxlen is only for string")
            default = self.default if self.default is not None else ()
            if not isinstance(default, tuple) or len(default) > self.max_count:
                raise ValueError(f"parameter {self.name}: default must be at most "
                                 f"{self.max_count} elements")
            for v in default:
                _check_scalar_default(elem, v, self.name)
            return
        if self.max_count is not None:
            raise ValueError(f"parameter {self.name}: max_count is only for arrays")
        if self.type == "string":
            if not isinstance(self.maxlen, int) or self.maxlen < 1:
                raise ValueError(f"parameter {self.name}: string needs maxlen >= 1")
            if self.default is not None and (not isinstance(self.default, str)
                                             or len(self.default) > self.maxlen - 1):
                raise ValueError(f"parameter {self.name}: default does not fit "
                                 f"in {self.maxlen - 1} chars")
            return
        if self.maxlen is not None:
            raise ValueError(f"parameter {self.name}: maxlen is only for string")
        if self.type not in SCALAR_TYPES:
            raise ValueError(f"parameter {self.name}: unknown type {self.type!r}")
        if self.default is not None:
            _check_scalar_default(self.type, self.default, self.name)

    @property
    def is_array(self) -> bool:
        return self.type.startswith(ARRAY_PREFIX)

    @property
    def elem_type(self) -> str:
        """The element type of an array, else the type itself."""
        return self.type[len(ARRAY_PREFIX):] if self.is_array else self.type

    @property
    def modinfo_type(self) -> str | None:
        """The ``parmtype=name:<this>`` text, None for module_param_cb."""
        return None if self.callback else self.type

    @property
    def noarg(self) -> bool:
        """Whether a bare ``name`` (no ``=``) is accepted (KERNEL_PARAM_OPS_FL_NOARG)."""
        return self.type in NOARG_TYPES


# --------------------------------------------------------------------------
# Live parameters


def _set_scalar(type_: str, text: str, name: str, printk: Printk) -> Any:
    """One param_set_<type>: the new C value for ``text`` or KernelError."""
    if type_ == "bool":
        return kstrtobool(text)
    if type_ == "invbool":
        return not kstrtobool(text)
    if type_ == "bint":
        return int(kstrtobool(text))
    if type_ == "charp":
        if len(text) > CHARP_MAX:
            printk(f"{name}: string parameter too long")
            raise KernelError(errno.ENOSPC)
        return text
    bits, signed = INT_TYPES[type_]
    return kstrtoint(text, bits, signed)


def _get_scalar(type_: str, value: Any) -> str:
    """One param_get_<type>, newline included."""
    if type_ == "bool":
        return ("Y" if value else "N") + "\n"
    if type_ == "invbool":
        return ("N" if value else "Y") + "\n"
    if type_ == "charp":
        return ("(null)" if value is None else value) + "\n"
    if type_ == "hexint":
        # C's "%#08x" adds no 0x to zero.
        return ("00000000" if value == 0 else format(value, "#08x")) + "\n"
    return f"{int(value)}\n"


class Param:
    """One kernel_param of a running kernel or loaded module, with its storage.

    ``name`` is the kernel_param name used in the setters' own messages
    (``modname.param`` for built-ins); it defaults to the spec's name.
    ``value`` is the C variable: for invbool the stored (inverted) bool,
    for arrays the first ``num`` elements (all of them without a count).
    """

    def __init__(self, spec: ParamSpec, name: str | None = None):
        self.spec = spec
        self.name = name or spec.name
        if spec.is_array:
            elem = spec.elem_type
            default = list(spec.default or ())
            self._elems: list[Any] = default + [_zero(elem)] * (spec.array_size - len(default))
            self._num = len(default)
            self._scalar: Any = None
        else:
            self._scalar = spec.default if spec.default is not None else _zero(spec.type)

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.spec.type!r}, value={self.value!r})"

    @property
    def value(self) -> Any:
        if self.spec.is_array:
            return list(self._elems[:self._num] if self.spec.with_num else self._elems)
        return self._scalar

    @value.setter
    def value(self, v: Any) -> None:
        """Direct assignment, as module code writing its own variable would."""
        if self.spec.is_array:
            v = list(v)
            if len(v) > self.spec.array_size:
                raise ValueError("too many elements")
            self._elems[:len(v)] = v
            self._num = len(v)
        else:
            self._scalar = v

    def set(self, text: str | None, doing: str = "", printk: Printk | None = None) -> None:
        """ops->set for ``text`` (None = the word had no ``=``).

        Raises KernelError with the setter's errno; like the kernel, a failed
        array keeps the elements parsed before the bad one and its count
        drops to them. ``doing`` is accepted for symmetry with parse_args;
        the C setters do not use it.
        """
        log = printk or _noop
        spec = self.spec
        if text is None:
            if not spec.noarg:
                raise KernelError(errno.EINVAL)
            text = "1"
        text = text.split("\0", 1)[0]  # C strings end at the first NUL
        if spec.is_array:
            self._set_array(text, log)
        elif spec.type == "string":
            if len(text) >= spec.buffer_size:
                log(f"{self.name}: string doesn't fit in {spec.buffer_size - 1} chars.")
                raise KernelError(errno.ENOSPC)
            self._scalar = text
        else:
            self._scalar = _set_scalar(spec.type, text, self.name, log)

    def _set_array(self, text: str, log: Printk) -> None:
        """param_array: comma split, element setter per item, count as it goes."""
        spec = self.spec
        num = 0
        self._num = 0
        pieces = text.split(",")
        try:
            for piece in pieces:
                if num == spec.max_count:
                    log(f"{self.name}: can only take {spec.max_count} arguments")
                    raise KernelError(errno.EINVAL)
                self._elems[num] = _set_scalar(spec.elem_type, piece, self.name, log)
                num += 1
        finally:
            self._num = num

    def shown_value(self, text: str | None) -> str:
        """The value as parse_args prints it after a failed set.

        param_array writes a NUL over the first comma before parsing, so
        the message shows only the first element.
        """
        if text is None:
            return ""
        text = text.split("\0", 1)[0]
        return text.split(",", 1)[0] if self.spec.is_array else text

    def get(self) -> str:
        """ops->get: the sysfs text. Arrays join elements with ',' and an
        empty array reads as "" (no newline), as param_array_get does."""
        spec = self.spec
        if spec.is_array:
            return ",".join(_get_scalar(spec.elem_type, v).rstrip("\n")
                            for v in self.value) + ("\n" if self.value else "")
        if spec.type == "string":
            return self._scalar + "\n"
        return _get_scalar(spec.type, self._scalar)

    # -- sysfs (/sys/module/<mod>/parameters/<name>), as root ------------

    def check_unsafe(self, printk: Printk | None = None,
                     taint: Callable[[], None] | None = None) -> None:
        """param_check_unsafe: module_param_unsafe taints on every set."""
        if self.spec.unsafe:
            (printk or _noop)(f"Setting dangerous option {self.name} - tainting kernel")
            if taint is not None:
                taint()

    def read_sysfs(self) -> str:
        """A read of the sysfs file: ENOENT without one, EACCES without read bits."""
        if self.spec.perm == 0:
            raise KernelError(errno.ENOENT)
        if not self.spec.perm & 0o444:
            raise KernelError(errno.EACCES)
        return self.get()

    def write_sysfs(self, text: str, printk: Printk | None = None,
                    taint: Callable[[], None] | None = None) -> None:
        """A write to the sysfs file, ``echo``'s newline included in ``text``.

        kernfs refuses to open a file without any write bit (EACCES, even for
        root); perm 0 means there is no file (ENOENT). An empty write never
        reaches the setter; a longer one than a page is cut to a page.
        """
        if self.spec.perm == 0:
            raise KernelError(errno.ENOENT)
        if not self.spec.perm & 0o222:
            raise KernelError(errno.EACCES)
        if text == "":
            return
        text = text[:PAGE_SIZE]
        self.check_unsafe(printk, taint)
        self.set(text, "sysfs", printk)


# --------------------------------------------------------------------------
# kernel/params.c: parse_args


Lookup = Mapping[str, Param] | Callable[[str], "Param | None"]
Unknown = Callable[[str, "str | None"], int]


def _find(params: Lookup, name: str) -> Param | None:
    if callable(params) and not isinstance(params, Mapping):
        return params(name)
    for key, p in params.items():
        if parameq(name, key):
            return p
    return None


def parse_one(doing: str, name: str, value: str | None, params: Lookup,
              unknown: Unknown | None, printk: Printk,
              level_filter: tuple[int, int] | None,
              taint: Callable[[], None] | None) -> int:
    """Apply one word: 0 or a negative errno, as parse_one returns."""
    p = _find(params, name)
    if p is None:
        return unknown(name, value) if unknown is not None else -errno.ENOENT
    if level_filter is not None and not level_filter[0] <= p.spec.level <= level_filter[1]:
        return 0
    if value is None and not p.spec.noarg:
        return -errno.EINVAL
    p.check_unsafe(printk, taint)
    try:
        p.set(value, doing, printk)
    except KernelError as e:
        return -e.errno
    return 0


def parse_args(doing: str, args: str, params: Lookup, *,
               unknown: Unknown | None = None, printk: Printk,
               level_filter: tuple[int, int] | None = None,
               taint: Callable[[], None] | None = None) -> tuple[int, str | None]:
    """Parse ``args`` against ``params`` the way kernel/params.c does.

    Returns ``(err, rest)``: err is 0 or the *last* negative errno (parsing
    goes on after errors); rest is the text after a bare ``--`` — only when
    err is 0, because the kernel returns the error instead of the rest.
    ``params`` is a name->Param mapping (matched with parameq) or a lookup
    function; ``unknown(name, value)`` returns 0 or a negative errno;
    ``level_filter`` is (min_level, max_level), None for all levels.
    """
    err = 0
    pos = skip_spaces(args)
    while pos < len(args):
        name, value, pos = next_arg(args, pos)
        if value is None and name == "--":
            return err, (args[pos:] if err == 0 else None)
        ret = parse_one(doing, name, value, params, unknown, printk, level_filter, taint)
        if ret == 0:
            continue
        p = _find(params, name) if value is not None else None
        shown = p.shown_value(value) if p is not None else (value or "")
        if ret == -errno.ENOENT:
            printk(f"{doing}: Unknown parameter `{name}'")
        elif ret == -errno.ENOSPC:
            printk(f"{doing}: `{shown}' too large for parameter `{name}'")
        else:
            printk(f"{doing}: `{shown}' invalid for parameter `{name}'")
        err = ret
    return err, None
