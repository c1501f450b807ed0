"""Hook specifications: how plugins and observers meet a kernel.

Modelled on pytest's ``hookspec.py``: each spec is documented where it is
declared. pluggy is used for *discovery, registration and events* only; the
per-page calls (put/get/store/load/invalidate) go straight to the ops object a
backend registered with the frontend, exactly as Linux calls through a
function-pointer table.

Every kernel owns its own ``PluginManager`` (no global state): a Xen host or a
ramster cluster runs several kernels in one process.
"""

from __future__ import annotations

import pluggy

PROJECT = "kmodemu"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- discovery -----------------------------------------------------------------

@hookspec
def kmodemu_modules():
    """Return the module declarations (``ModuleDecl``) this plugin provides.

    Called once per module registry. A plugin package (found through the
    ``kmodemu.modules`` entry-point group, the repository's ``plugins/``
    directory or ``--module-path``) implements it to make its modules known to
    ``insmod``/``modprobe``/``depmod`` and, when configured built in, to boot.
    """


# -- kernel lifecycle events (observers: scenarios, reports, tests) -------------

@hookspec
def kmodemu_printk(kernel, record):
    """A line was logged (``record`` is a ``LogRecord``). Must not printk itself."""


@hookspec
def kmodemu_boot_done(kernel):
    """All initcalls ran and the command line was consumed; user space starts."""


@hookspec
def kmodemu_module_loaded(kernel, module):
    """A module's init returned success and it became LIVE (or a built-in's initcall ran)."""


@hookspec
def kmodemu_module_unloaded(kernel, name):
    """A module was removed after its exit function ran."""
