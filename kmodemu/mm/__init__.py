"""Memory management: RAM frames, page cache, swap, reclaim and the tmem frontends."""
