"""An emulated Xen 4.2 hypervisor with transcendent memory, independent of any kernel.

Xen's ``common/tmem.c`` (clients, pools, objects, page descriptors, the global
ephemeral LRU), the host memory its allocator hands out, the domains that own
that memory, the hypervisor console, the tmem hypercall ABI and the ``xl``
toolstack. Guest kernels reach it only through the hypercalls of
:mod:`kmodemu.xen.hypervisor`; nothing here imports the kernel, so one host
can carry several guests and tests can drive the hypervisor alone.
"""
