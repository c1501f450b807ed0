"""Suite-wide test settings.

Hypothesis: no per-example deadline (a loaded 2-core CI machine must not turn a
slow example into a failure); ``--hypothesis-profile=soak`` (``make soak``)
runs many more examples where a test does not pin its own count.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None)
settings.register_profile("soak", deadline=None, max_examples=2000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")
