"""Suite-wide test settings.

Hypothesis: no per-example deadline (a loaded 2-core CI machine must not turn a
slow example into a failure); ``--hypothesis-profile=soak`` (``make soak``)
runs many more examples where a test does not pin its own count.
"""

import pytest
from hypothesis import HealthCheck, settings

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
