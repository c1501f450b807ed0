"""``lsmod``: /proc/modules order, sizes and use counts from sysfs (kmod 30)."""

from __future__ import annotations

from .context import ToolContext


def main(argv: list[str], ctx: ToolContext) -> int:
    if len(argv) != 1:
        ctx.stderr.write(f"Usage: {argv[0] if argv else 'lsmod'}\n")
        return 1
    text = ctx.read_proc("/proc/modules")
    if text is None:
        ctx.stderr.write("Error: could not get list of modules: No such file or directory\n")
        return 1
    w = ctx.stdout.write
    w("Module                  Size  Used by\n")
    kernel = ctx.kernel
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        name = fields[0]
        size_txt = ctx.read_proc(f"/sys/module/{name}/coresize")
        if size_txt is not None and size_txt.strip().lstrip("-").isdigit():
            size = int(size_txt)
        else:
            size = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        ref_txt = ctx.read_proc(f"/sys/module/{name}/refcnt")
        refcnt = int(ref_txt) if ref_txt is not None and ref_txt.strip().lstrip("-").isdigit() else -2
        holders: list[str] = []
        vfs = getattr(kernel, "vfs", None)
        if vfs is not None:
            try:
                holders = list(vfs.listdir(f"/sys/module/{name}/holders"))
            except Exception:
                holders = []
        w(f"{name:<19} {size:>8}  {refcnt}")
        if holders:
            w(" " + ",".join(holders))
        w("\n")
    return 0
