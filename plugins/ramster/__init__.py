"""RAMster: zcache pages kept in a peer's RAM over real TCP (Linux 3.10 staging/zcache/ramster).

Not a module of its own: as in Linux (CONFIG_RAMSTER), this code is linked
into zcache, which turns it on with ``ramster_enabled=1`` / boot ``ramster``.
The pieces are named after their Linux files: ``tcp`` (r2net messaging, with
``tcp_internal`` the wire format), ``nodemanager`` (the ``cluster`` configfs),
``heartbeat`` (the manual node-up map), ``r2net`` (RAMster's messages),
``ramster`` (remotify, localify, flushes, sysfs, self-shrinking) and ``debug``
(the debugfs counters). ``zcache_side`` is the contract with zcache.
"""
