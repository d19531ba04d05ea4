"""Settings for the whole suite.

Test directories have no __init__.py; pytest imports test files in importlib mode (pyproject),
so put shared helpers in fixtures here rather than importing one test file from another.
"""

from __future__ import annotations

import os

from hypothesis import settings

# "ci": what `torus test` uses (tools/testrun.py sets HYPOTHESIS_PROFILE=ci). No deadline, since
# a shared 2-core runner makes timings noisy; random, not derandomized, so each run explores new
# examples; print_blob so a failure prints the @reproduce_failure line that replays it.
settings.register_profile("ci", deadline=None, derandomize=False, print_blob=True)
# "dev": plain `pytest` from a shell; the same minus the blob, which the local database replaces.
settings.register_profile("dev", deadline=None)
# "deep": ten times the examples, for a developer hunting a rare case (HYPOTHESIS_PROFILE=deep).
settings.register_profile("deep", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
