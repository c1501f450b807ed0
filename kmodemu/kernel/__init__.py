"""The emulated kernel: command line (lib/cmdline.c, init/main.c), parameters, printk,
pseudo filesystems, clock, taint; ``kernel.py`` holds the Kernel object that assembles them
with the module loader and mm (see the layers in docs/concepts.md)."""
