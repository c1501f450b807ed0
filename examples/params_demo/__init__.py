"""params_demo: an example module with parameters of every kind, and a counter in debugfs.

It is the model docs/modules.md walks through, and the tests load it with
``--module-path examples``. It exports one symbol, so another module can use
it and show up in "Used by".
"""

from __future__ import annotations

import errno

from kmodemu.tmem import KERN_INFO, BootParam, ModuleContext, ModuleDecl, ParamSpec, hookimpl

PARAMS = (
    ParamSpec("enabled", "bool", 0o644, "Enable the demo", True),
    ParamSpec("verbose", "invbool", 0o644, "Quiet mode (inverted bool)", False),
    ParamSpec("level", "int", 0o644, "Level from -10 to 10", 3),
    ParamSpec("pages", "ulong", 0o444, "Pages to reserve", 16),
    ParamSpec("ratio", "byte", 0o644, "Ratio in percent", 50),
    ParamSpec("mask", "hexint", 0o644, "Feature mask", 0xFF),
    ParamSpec("name", "charp", 0o444, "A name", "demo"),
    ParamSpec("label", "string", 0o644, "A label of at most 7 characters", "tiny", maxlen=8),
    ParamSpec("sizes", "array of int", 0o644, "Up to four sizes", (1, 2), max_count=4),
    ParamSpec("secret", "int", 0, "A parameter without a sysfs file", 0),
)


def demo_init(ctx: ModuleContext) -> int:
    p = ctx.params
    if not -10 <= p.level <= 10:
        ctx.printk(f"params_demo: level {p.level} out of range", KERN_INFO)
        return -errno.EINVAL
    counters = {"inits": 1}
    ctx.state.counters = counters
    ctx.debugfs("params_demo", lambda: counters)
    ctx.export("params_demo_hello", lambda who: f"hello, {who}")
    where = "built in" if ctx.builtin else "as a module"
    ctx.printk(f"params_demo: loaded {where} (name={p.name}, sizes={p.sizes})", KERN_INFO)
    return 0


def demo_exit(ctx: ModuleContext) -> None:
    ctx.printk("params_demo: unloaded", KERN_INFO)


def _setup(rest: str, ctx: ModuleContext) -> int:
    ctx.state.boot_word = rest
    return 1


PARAMS_DEMO = ModuleDecl(
    name="params_demo",
    description="Example module with parameters of every kind",
    license="GPL",
    author="kmodemu authors",
    version="1.0",
    params=PARAMS,
    aliases=("demo-params",),
    exports=("params_demo_hello",),
    init=demo_init,
    exit=demo_exit,
    boot_params=(BootParam("params_demo=", _setup),),
    extra={"path": "kernel/samples/params_demo.ko"},
)

def _user_init(ctx: ModuleContext) -> int:
    ctx.printk(ctx.symbol_value("params_demo_hello")("kernel"))
    return 0


PARAMS_DEMO_USER = ModuleDecl(
    name="params_demo_user",
    description="Uses params_demo's exported symbol",
    license="GPL",
    author="kmodemu authors",
    depends=("params_demo",),
    requires=("params_demo_hello",),
    init=_user_init,
    exit=lambda ctx: None,
    extra={"path": "kernel/samples/params_demo_user.ko"},
)


@hookimpl
def kmodemu_modules():
    return [PARAMS_DEMO, PARAMS_DEMO_USER]
