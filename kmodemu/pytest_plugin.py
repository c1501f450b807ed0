"""kmodemu's pytest plugin (entry point ``pytest11: kmodemu``).

* Scenario files (``*.scn``) found in a test tree become test items, one per
  scenario, whose failure report is the transcript diff: ``pytest scenarios/``,
  ``pytest -n auto`` (pytest-xdist) run them.
* Fixtures for plugin authors: ``machine`` (a booted machine with the CLI's
  commands), ``kernel`` (its kernel) and ``load_module`` (load a module from a
  path), and ``running_machine`` (real machine processes, stopped at
  teardown). Configure them with ``@pytest.mark.kmodemu(cmdline=..., profile=...)``
  or parametrize ``machine``/``kernel`` indirectly. See docs/testing-plugins.md.

This module is imported by every pytest run in an environment where kmodemu is
installed, so it imports nothing of kmodemu until a scenario or fixture is used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SCENARIO_SUFFIX = ".scn"  # kmodemu.scenario.SUFFIX, without importing it here
MACHINE_KEYS = ("cmdline", "profile", "mem", "builtin", "module_path", "seed", "release", "root")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "kmodemu(cmdline='', profile='3.10', mem='256M', builtin=(), module_path=(), "
                   "seed=0): the machine the kmodemu fixtures boot")


def pytest_addoption(parser):
    group = parser.getgroup("kmodemu")
    group.addoption("--kmodemu-record", action="store_true", default=False,
                    help="Rewrite the expected output of failing scenario files in place.")


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == SCENARIO_SUFFIX:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file: one item (a scenario per file)."""

    def collect(self):
        from kmodemu.scenario import ScenarioSyntaxError, load

        try:
            scn = load(self.path)
        except ScenarioSyntaxError as e:
            raise self.CollectError(str(e)) from None
        item = ScenarioItem.from_parent(self, name=scn.name, scenario=scn)
        reason = scn.skip
        if reason is None and scn.requires:
            from kmodemu.scenario.runner import missing_commands

            missing = missing_commands(scn)
            reason = f"requires command(s) not available here: {', '.join(missing)}" if missing else None
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        yield item


class ScenarioFailed(Exception):
    """Raised by a scenario item; carries the runner's result for the report."""

    def __init__(self, result):
        super().__init__(result.reason)
        self.result = result


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario, **kwargs):
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self):
        from kmodemu.scenario import FAIL, SKIP, record, run_scenario

        # the person running pytest chose its rootdir: scenarios may reach within it
        result = run_scenario(self.scenario, trust_root=self.config.rootpath)
        if result.status == SKIP:
            pytest.skip(result.reason or "skipped")
        if result.status == FAIL and self.config.getoption("kmodemu_record", False):
            if record(self.scenario, result):
                return
        if not result.ok:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            r = excinfo.value.result
            head = f"scenario {r.name} ({r.status}): {r.reason}"
            return head + ("\n" + r.diff.rstrip("\n") if r.diff else "") + \
                "\n(kmodemu run FILE --record, or pytest --kmodemu-record, accepts the new output)"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"scenario: {self.name}"


# -- fixtures -----------------------------------------------------------------

def _machine_options(request) -> dict:
    """Marker keywords, then an indirect parameter of ``machine`` or ``kernel``."""
    options: dict = {}
    for mark in reversed(list(request.node.iter_markers("kmodemu"))):
        options.update(mark.kwargs)
    callspec = getattr(request.node, "callspec", None)
    for name in ("kernel", "machine"):
        if callspec is not None and name in callspec.params:
            param = callspec.params[name]
            options.update({"cmdline": param} if isinstance(param, str) else dict(param))
            break
    unknown = set(options) - set(MACHINE_KEYS)
    if unknown:
        raise pytest.UsageError(f"kmodemu machine: unknown option(s) {sorted(unknown)} "
                                f"(known: {', '.join(MACHINE_KEYS)})")
    if isinstance(options.get("builtin"), str):
        options["builtin"] = [options["builtin"]]
    if isinstance(options.get("module_path"), (str, Path)):
        options["module_path"] = [options["module_path"]]
    if "module_path" in options:
        options["module_path"] = [str(Path(p).resolve()) for p in options["module_path"]]
    return options


class ConsoleMachine:
    """A booted machine, driven the way its console is: ``machine.sh("lsmod")``.

    Everything else (``kernel``, ``root``, ``capture``…) is the ``Machine``'s own.
    """

    def __init__(self, machine):
        from kmodemu.scenario import Session

        self._machine = machine
        self._session = Session(machine)

    def sh(self, line: str, stdin: str | None = None) -> "Result":
        """Run one command line (pipes, ``echo … > /sys/…`` and here-documents work)."""
        return Result(line, self._session.run(line, stdin=stdin))

    def __getattr__(self, name):
        return getattr(self._machine, name)


class Result:
    """A command's exit status and output, with assertions that show both streams."""

    def __init__(self, line: str, outcome):
        self.command = line
        self.rc = outcome.rc
        self.stdout = outcome.stdout
        self.stderr = outcome.stderr

    def __repr__(self):
        return (f"$ {self.command}\n[exit {self.rc}]\n--- stdout\n{self.stdout}"
                f"--- stderr\n{self.stderr}")

    def assert_success(self) -> "Result":
        assert self.rc == 0, f"expected success:\n{self!r}"
        return self

    def assert_failed(self, rc: int | None = None) -> "Result":
        assert (self.rc != 0 if rc is None else self.rc == rc), f"expected failure {rc}:\n{self!r}"
        return self


@pytest.fixture
def machine(request):
    """A freshly booted in-memory machine (see ``kmodemu`` marker for its definition)."""
    from kmodemu.machine import Machine, MachineDef

    m = Machine(MachineDef(**_machine_options(request)))
    try:
        yield ConsoleMachine(m)
    finally:
        m.close()


@pytest.fixture
def kernel(machine):
    """The booted ``Kernel`` of the ``machine`` fixture."""
    return machine.kernel


@pytest.fixture
def load_module(machine):
    """``load_module(path, args="", name=None)``: make the modules of a plugin package
    (a directory, or a single ``.py`` file) known to the machine and load one.

    Returns the loaded ``Module``; a failing init raises ``KernelError`` with its errno.
    """
    def load(path, args: str = "", name: str | None = None):
        from kmodemu.modules.discovery import import_plugin_dir, import_plugin_file

        path = Path(path)
        module = import_plugin_dir(path) if path.is_dir() else import_plugin_file(path)
        decls = list(module.kmodemu_modules() or ())
        for decl in decls:
            machine.registry.add(decl)
        names = [d.name for d in decls]
        wanted = name or (names[0] if len(names) == 1 else None)
        if wanted is None or machine.registry.get(wanted) is None:
            raise ValueError(f"{path} provides modules {names}; say which one with name=")
        return machine.kernel.load_module(machine.registry.get(wanted), args)

    return load


@pytest.fixture
def running_machine(tmp_path):
    """``running_machine(name="m", boot=("--cmdline", "…"))``: a real machine process, as
    ``kmodemu boot`` starts it, with ``.run(*argv)``, ``.cli(*args)``, ``.kill()``, ``.pid``
    and a distinct loopback ``.address``; every one is stopped at teardown."""
    from kmodemu.machine.testing import Machines

    machines = Machines(tmp_path / "machines")
    try:
        yield machines
    finally:
        machines.close()
