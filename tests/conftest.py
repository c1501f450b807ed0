"""Suite-wide test settings.

Hypothesis: no per-example deadline (a loaded 2-core CI machine must not turn a
slow example into a failure); ``--hypothesis-profile=soak`` (``make soak``)
runs many more examples, also where a test pins its own count (KMODEMU_SOAK
raises every pinned ``max_examples`` to at least SOAK_EXAMPLES: the soak wins).
"""

import os

import pytest
from hypothesis import HealthCheck, settings

#: ``make soak`` sets KMODEMU_SOAK: a count pinned in a test's @settings is raised to at least this
SOAK_EXAMPLES = 2000
if os.environ.get("KMODEMU_SOAK"):
    _init = settings.__init__

    def _soak_init(self, parent=None, **kwargs):
        if "max_examples" in kwargs:
            kwargs["max_examples"] = max(kwargs["max_examples"], SOAK_EXAMPLES)
        if "stateful_step_count" in kwargs:
            kwargs["stateful_step_count"] = max(kwargs["stateful_step_count"], 200)
        _init(self, parent, **kwargs)

    settings.__init__ = _soak_init  # type: ignore[method-assign]

settings.register_profile("default", deadline=None)
settings.register_profile("soak", deadline=None, max_examples=2000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _stop_machine_processes(request):
    """A test that booted machines through the CLI leaves no machine process behind."""
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if tmp is not None:
        from kmodemu.machine.testing import stop_all_under
        stop_all_under(tmp)
