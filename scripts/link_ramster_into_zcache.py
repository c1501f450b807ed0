"""One-time edit: link RAMster into the rebuilt zcache (plugins/zcache/main.py of the tmem contract).

The ramster branch was finished before the rebuilt zcache landed; this applies
the CONFIG_RAMSTER changes to that main.py exactly as they were tested against
it (tests/ramster/test_zcache_link.py, which skips until this has run):
``ramster_enabled`` (Linux) and its alias ``ramster``, ``disable_frontswap_selfshrink``,
boot ``ramster`` without the built-in-module check and ``noselfshrink``, namestr
"ramster", zbud required, and ``_ramster_init`` (plugins/ramster/zcache_glue.py)
in place of the request_module path. Run once from the repository root:

    python3 scripts/link_ramster_into_zcache.py .

It also turns the two tests of tests/zcache/test_module.py that pinned the
unlinked behaviour (``ramster=1`` → ENODEV) into tests of the linked one. Then
move tests/ramster/scenarios/*.scenario to scenarios/ramster/*.scn
(dropping their module-path line) and delete this script.
"""
import sys
p = sys.argv[1] + "/plugins/zcache/main.py"
s = open(p).read()

def rep(old, new, count=1):
    global s
    assert old in s, old[:80]
    s = s.replace(old, new, count)

rep('''    ramster: bool = False
    zpool: str = "zbud"''', '''    ramster: bool = False
    #: RAMster's frontswap self-shrinking (``noselfshrink`` / ``disable_frontswap_selfshrink``)
    selfshrink: bool = True
    zpool: str = "zbud"''')
rep('''def _enable_ramster(rest: str, ctx: ModuleContext) -> int:
    """``ramster``: exists only when RAMster is built in too (CONFIG_RAMSTER=y)."""
    if not ctx.kernel_has_ramster:
        return 0  # no such __setup: the word goes on to init, as on a kernel without RAMster
    s = _boot(ctx)''', '''def _enable_ramster(rest: str, ctx: ModuleContext) -> int:
    """``ramster``: zcache and RAMster (kmodemu's zcache is built with CONFIG_RAMSTER=y)."""
    s = _boot(ctx)''')
rep('''    BootParam("zcache=", _enable_compressor),
)''', '''    BootParam("zcache=", _enable_compressor),
    # ramster.c's own __setup (built-in RAMster only)
    BootParam("noselfshrink", _boot_flag("selfshrink", False)),
)''')
rep('''    ParamSpec("ramster", "bool", 0o444, "keep pages in a peer's RAM (needs the ramster module)",
              False),
    ParamSpec("disable_frontswap_selfshrink", "int", 0o444,
              "ramster: no frontswap self-shrinking", 0),''', '''    ParamSpec("ramster_enabled", "bool", 0o444,
              "enable RAMster: keep pages in a peer's RAM over the network", False),
    ParamSpec("ramster", "bool", 0o444,
              "kmodemu alias of ramster_enabled (Linux 3.10 has only ramster_enabled)", False),
    ParamSpec("disable_frontswap_selfshrink", "int", 0o444,
              "RAMster: no frontswap self-shrinking", 0),''')
rep('''        ramster=p.ramster, zpool=p.zpool or "zbud", same_filled=p.same_filled,
    )''', '''        ramster=bool(p.ramster_enabled or p.ramster),
        selfshrink=not p.disable_frontswap_selfshrink,
        zpool=p.zpool or "zbud", same_filled=p.same_filled,
    )''')
rep('''    if s.ramster:
        ret = _ramster(ctx)
        if ret:
            return ret
''', '''    namestr = "ramster" if s.ramster else NAMESTR
    if s.ramster and s.zpool != "zbud":
        ctx.printk(f"zcache: ramster needs zbud, not {s.zpool}", KERN_ERR)
        return -errno.EINVAL
''')
rep('''    zcache.printk = lambda text: ctx.printk(text, KERN_INFO)''', '''    zcache.printk = lambda text: ctx.printk(text, KERN_INFO)
    zcache.namestr = namestr''')
rep('''        ctx.printk(f"{NAMESTR}: cleancache enabled using''', '''        ctx.printk(f"{namestr}: cleancache enabled using''')
rep('''            ctx.printk(f"{NAMESTR}: cleancache_ops overridden"''', '''            ctx.printk(f"{namestr}: cleancache_ops overridden"''')
rep('''        ctx.printk(f"{NAMESTR}: frontswap enabled using''', '''        ctx.printk(f"{namestr}: frontswap enabled using''')
rep('''            ctx.printk(f"{NAMESTR}: frontswap_ops overridden", KERN_WARNING)
    return 0
''', '''            ctx.printk(f"{namestr}: frontswap_ops overridden", KERN_WARNING)
    if s.ramster:
        _ramster_init(ctx, zcache, s)
    return 0
''')
a = s.index("def _ramster(ctx: ModuleContext) -> int:")
b = s.index("def _shrinker(")
s = s[:a] + '''def _ramster_init(ctx: ModuleContext, zcache: Zcache, s: Settings) -> None:
    """ramster_init(cleancache, frontswap, exclusive gets, selfshrink): RAMster is linked in.

    As a module, r2nm_init (the ``cluster`` configfs subsystem) runs here; built
    in, Linux runs it at late_initcall, which is when zcache_init runs too.
    """
    from importlib import import_module
    glue = import_module("kmodemu_plugins.ramster.zcache_glue")
    ramster_mod = import_module("kmodemu_plugins.ramster.ramster")

    def make(side):
        return ramster_mod.Ramster(ctx.kernel, side, cleancache=not s.disable_cleancache,
                                   frontswap=not s.disable_frontswap,
                                   exclusive_gets=s.exclusive_gets, selfshrink=s.selfshrink)
    rs = glue.link(zcache, make, pack_handle)
    ctx.private(ZcacheState).ramster = rs
    rs.init(register_nodemanager=True)
    ctx.on_cleanup(rs.shutdown)


''' + s[b:]
rep('''    zcache: Zcache | None = None
''', '''    zcache: Zcache | None = None
    ramster: object = None
''')
# the same zcache built without CONFIG_RAMSTER (examples/kernel-without-ramster): no RAMster
# parameters, no RAMster boot words; everything else as MODULE
rep('''        ramster=bool(p.ramster_enabled or p.ramster),
        selfshrink=not p.disable_frontswap_selfshrink,''', '''        # getattr: a zcache built without CONFIG_RAMSTER has none of RAMster's parameters
        ramster=bool(getattr(p, "ramster_enabled", False) or getattr(p, "ramster", False)),
        selfshrink=not getattr(p, "disable_frontswap_selfshrink", 0),''')
s = s.rstrip("\n") + '''


#: CONFIG_RAMSTER unset: zcache.ko without RAMster's parameters and boot words (Linux's
#: ``#ifdef CONFIG_RAMSTER`` around them). Not registered by this plugin: a module path
#: that stands for such a kernel's module tree returns it (examples/kernel-without-ramster).
RAMSTER_PARAMS = ("ramster_enabled", "ramster", "disable_frontswap_selfshrink")
RAMSTER_BOOT_WORDS = ("ramster", "noselfshrink")
MODULE_WITHOUT_RAMSTER = dataclasses.replace(
    MODULE, params=tuple(p for p in PARAMS if p.name not in RAMSTER_PARAMS),
    boot_params=tuple(b for b in BOOT_PARAMS if b.name not in RAMSTER_BOOT_WORDS),
    extra=dict(MODULE.extra))
'''
if "import dataclasses" not in s:
    s = s.replace("from __future__ import annotations\n", "from __future__ import annotations\n\nimport dataclasses\n", 1)
open(p, "w").write(s)

# the two zcache tests that pinned the old behaviour (no RAMster) now pin the linked one
t = sys.argv[1] + "/tests/zcache/test_module.py"
ts = open(t).read()
old_boot = ts[ts.index("def test_ramster_boot_word_needs_ramster_built_in"):
              ts.index("def test_nofrontswap_and_nocleancache")]
ts = ts.replace(old_boot, """def test_ramster_boot_word_enables_zcache_and_ramster(machine):
    m = machine(builtin=["zcache"], cmdline="ramster")
    assert m.kernel.cleancache.registered
    assert m.kernel.read("/proc/1/cmdline") == "/sbin/init\\0"
    assert "ramster: cleancache enabled using kernel transcendent memory and compression " \\
        "buddies" in m.kernel.dmesg()
    assert m.kernel.vfs.listdir("/sys/kernel/config") == ["cluster"]


""")
old_mod = ts[ts.index("def test_ramster_parameter_without_ramster_module"):
             ts.index("def test_pre_patch_kernel_refuses_the_module")]
ts = ts.replace(old_mod, """def test_ramster_parameter_links_ramster(machine):
    m = machine()
    rc, _, err = m.capture(["insmod", "zcache", "ramster=1"])
    assert rc == 0, err
    assert m.kernel.modules.get("zcache") is not None
    assert m.kernel.read("/sys/module/zcache/parameters/ramster") == "Y\\n"
    assert m.kernel.read("/sys/kernel/mm/ramster/interface_revision") == "5\\n"


""")
open(t, "w").write(ts)
print("ok")
