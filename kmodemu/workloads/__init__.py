"""Workloads: seeded programs that drive a kernel's memory from user space.

Above the kernel layers: they use mm through its public objects the way a
process would use files and memory, and nothing in the kernel imports them.
"""
