"""Hook specifications of the memory model: events a scenario, a tool or a test may observe.

Added to every kernel's plugin manager by ``kmodemu.mm.attach``. They fire on
mount, swapon, backend registration, replay and reclaim passes — never per
page: per-page calls go straight to the backend's ops object. Implementations
must not change memory state from inside an event (observe, record, report).
"""

from __future__ import annotations

from kmodemu.hookspecs import hookspec


@hookspec
def kmodemu_mm_mount(kernel, sb):
    """A filesystem was mounted (``sb`` is the ``Superblock``), after its cleancache init.

    ``sb.cleancache_poolid`` shows what the frontend gave it: -1 (no
    cleancache), a fake id 1000+slot / 2000+slot (3.10) or a backend pool id
    (3.9).
    """


@hookspec
def kmodemu_mm_umount(kernel, sb):
    """A filesystem was unmounted. At the last mount of its superblock
    ``cleancache_invalidate_fs`` ran first and the page cache was dropped
    after (deactivate_locked_super's order); an earlier one changes nothing
    but the mount table."""


@hookspec
def kmodemu_mm_swapon(kernel, device):
    """A swap device (``SwapDevice``: ``type``, ``path``, ``prio``, ``pages``) was enabled,
    after ``frontswap_init``."""


@hookspec
def kmodemu_mm_swapoff(kernel, device):
    """A swap device was disabled: every page was brought back, then
    ``frontswap_invalidate_area`` ran and the map was detached."""


@hookspec
def kmodemu_tmem_backend_registered(kernel, frontend, ops, old):
    """A backend's ops were published on ``frontend`` (``"cleancache"`` or ``"frontswap"``).

    ``old`` is what the register call returned: the ops it replaced, or None
    the first time (Linux's callers warn "… overridden" when it is not None).
    Fires after the replay, which ``kmodemu_tmem_replay`` reports step by step.
    """


@hookspec
def kmodemu_tmem_backend_unregistered(kernel, frontend, ops):
    """A backend let go of ``frontend`` (profile 3.10-unload only, beyond Linux).

    Fires once the frontend is back in its "no backend" state: cleancache's
    slots are FS_NO_BACKEND again, frontswap's swap types are pending init, and
    every persistent page the backend held is on its swap device.
    """


@hookspec
def kmodemu_tmem_replay(kernel, frontend, index, shared, pool_id):
    """Registration replayed lazy init for one recorded user (3.10 only).

    cleancache: ``index`` is the slot, ``shared`` whether it is the shared
    table, ``pool_id`` what the backend's ``init_fs``/``init_shared_fs``
    returned. frontswap: ``index`` is the swap type, ``shared`` False and
    ``pool_id`` None (``init`` returns nothing).
    """


@hookspec
def kmodemu_mm_reclaim(kernel, wanted, freed, stats):
    """One reclaim pass ended: ``wanted`` frames asked for, ``freed`` obtained.

    ``stats`` is a dict: ``file_evicted`` (clean pages put to cleancache and
    dropped), ``anon_swapped`` (pages swapped out), ``shrunk`` (frames the
    registered shrinkers gave back).
    """
