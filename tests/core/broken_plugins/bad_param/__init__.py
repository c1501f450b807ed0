"""A plugin whose declaration is invalid: perm 0o777 makes a world-writable parameter."""

from kmodemu.hookspecs import hookimpl
from kmodemu.kernel.params import ParamSpec
from kmodemu.modules.declaration import ModuleDecl

BAD = ParamSpec("x", "int", 0o777)


@hookimpl
def kmodemu_modules():
    return [ModuleDecl(name="bad_param", params=(BAD,))]
