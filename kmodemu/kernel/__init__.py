"""The emulated kernel: command line, parameters, module loader."""
