"""Boot-word hints: what the CLI says on stderr where Linux is silent."""

from __future__ import annotations

from kmodemu.hints import boot_hints
from kmodemu.kernel.params import ParamSpec
from kmodemu.modules.declaration import BootParam, ModuleDecl

from tests.core.helpers import StaticRegistry

ZC = ModuleDecl(name="zcache", boot_params=(BootParam("zcache", None), BootParam("ramster", None),
                                            BootParam("zcache=", None)),
                params=(ParamSpec("compressor", "charp"),))
EARLY = ModuleDecl(name="early_mod", boot_params=(BootParam("earlyword", None, early=True),))
REG = StaticRegistry(ZC, EARLY)


def test_word_of_a_module_that_is_not_built_in():
    (line,) = boot_hints("quiet zcache", [], REG)
    assert line == ("kmodemu: boot: 'zcache' is a boot parameter of zcache, which is a module on this "
                    "kernel, not built in, so the kernel passes the word to init. Boot with --builtin "
                    "zcache for the deprecated boot-parameter path, or load it later with "
                    "'kmodemu insmod zcache'.")


def test_once_per_module_and_prefix_matching_as_setup_does():
    lines = boot_hints("zcache=lz4 ramster zcache", [], REG)
    assert len(lines) == 1 and "'zcache=lz4'" in lines[0]


def test_nothing_when_built_in_or_unrelated():
    assert boot_hints("zcache ramster zcache.compressor=lz4", ["zcache"], REG) == []
    assert boot_hints("quiet root=/dev/sda1 foo", [], REG) == []
    assert boot_hints("zcache", [], None) == []


def test_early_params_match_exactly():
    assert boot_hints("earlywordX", [], REG) == []
    assert "early_mod" in boot_hints("earlyword=1", [], REG)[0]


def test_dotted_words():
    assert boot_hints("zcache.compressor=lz4", [], REG) == []  # modprobe reads it from /proc/cmdline
    (line,) = boot_hints("nosuch.param=1 nosuch.other=2", [], REG)
    assert line == ("kmodemu: boot: 'nosuch.param=1' sets a parameter of 'nosuch', which is neither "
                    "built in nor a module of this machine: nothing will read it.")
