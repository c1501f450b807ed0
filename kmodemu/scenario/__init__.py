"""Scenarios: transcripts of console commands with the output expected of them.

``load``/``parse`` read a file (format: docs/scenarios.md), ``run_scenario``
replays it on a fresh machine, ``Session`` runs command lines the way the
shell does. ``kmodemu run`` (``kmodemu.scenario.cli``) and the pytest plugin
are thin layers over these.
"""

from kmodemu.scenario.format import SUFFIX, Scenario, ScenarioSyntaxError, Step, load, parse
from kmodemu.scenario.runner import ERROR, FAIL, PASS, SKIP, ScenarioResult, record, run_scenario
from kmodemu.scenario.session import Outcome, Session

__all__ = ["SUFFIX", "Scenario", "ScenarioSyntaxError", "Step", "load", "parse", "ERROR", "FAIL",
           "PASS", "SKIP", "ScenarioResult", "record", "run_scenario", "Outcome", "Session"]
