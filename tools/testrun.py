"""`torus test`: the project's one check, run alike by people and by CI.

Runs every step even after one fails, so a single CI run reports lint and test failures together,
and returns the first non-zero exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# tools/ sits at the repository root; the project is installed editable, so this is the checkout.
REPO_ROOT = Path(__file__).resolve().parent.parent


def steps(pytest_args: list[str]) -> list[tuple[str, list[str]]]:
    """The steps, each run with this venv's interpreter so no other ruff or pytest is used."""
    return [
        ("ruff check", [sys.executable, "-m", "ruff", "check", "."]),
        ("ruff format --check", [sys.executable, "-m", "ruff", "format", "--check", "."]),
        ("pytest", [sys.executable, "-m", "pytest", *pytest_args]),
    ]


def run(pytest_args: list[str]) -> int:
    if not (REPO_ROOT / "pyproject.toml").is_file():
        print(f"torus test: no pyproject.toml in {REPO_ROOT}; run from a checkout", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.setdefault("HYPOTHESIS_PROFILE", "ci")  # tests/conftest.py registers it
    first_failure = 0
    for name, cmd in steps(pytest_args):
        print(f"torus test: {name}", file=sys.stderr, flush=True)
        code = subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=False).returncode
        if code != 0:
            print(f"torus test: {name} failed (exit {code})", file=sys.stderr, flush=True)
            first_failure = first_failure or code
    return first_failure
