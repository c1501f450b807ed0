"""kmodemu: an emulator of Linux's module machinery and of transcendent memory."""

__version__ = "0.1.0"
