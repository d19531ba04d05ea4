"""Import direction between our top-level packages, as DESIGN.md's "Packages" table sets it.

Files are parsed with `ast`, never imported, so a forbidden import is caught even in code that
would fail to import. Dynamic imports (importlib.import_module) are not seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

ANYTHING = None  # a package that may import any of ours

# Which of our top-level packages each one may import (DESIGN.md, "Packages").
MAY_IMPORT: dict[str, frozenset[str] | None] = {
    "ring": frozenset(),
    "objectd": frozenset({"ring"}),
    "containerd_": frozenset({"ring"}),
    "accountd": frozenset({"ring"}),
    "replicator": frozenset({"ring", "objectd", "containerd_", "accountd"}),
    "identity": frozenset({"ring"}),
    "proxy": frozenset({"ring", "identity"}),
    "compute": frozenset({"identity"}),
    "tools": ANYTHING,
}

# The shared primitives package (Timestamp, config loading, the server runner, the backend HTTP
# client) may be imported by every server; it imports nothing of ours, and ring, the bottom
# layer, does not import it.
SHARED: frozenset[str] = frozenset({"service"})

# Ours as well, but no package may import them.
NEVER_IMPORTED = frozenset({"tests", "bench"})

OURS = frozenset(MAY_IMPORT) | SHARED | NEVER_IMPORTED


def allowed_for(package: str) -> frozenset[str] | None:
    """The packages of ours that `package` may import; None means any."""
    if package in SHARED:
        return frozenset()
    allowed = MAY_IMPORT[package]
    if allowed is ANYTHING or package == "ring":
        return allowed
    return allowed | SHARED


def imported_top_levels(tree: ast.AST, package_parts: list[str]) -> list[tuple[ast.stmt, str]]:
    """Each import statement with the top-level package it reaches ("" if beyond the top)."""
    found: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node, (node.module or "").split(".")[0]))
        elif isinstance(node, ast.ImportFrom):
            # `from .x import y` is relative to the file's package; each extra dot goes up one.
            up = node.level - 1
            base = package_parts[: len(package_parts) - up] if up < len(package_parts) else []
            found.append((node, base[0] if base else ""))
    return found


def is_allowed(target: str, package: str) -> bool:
    if not target:
        return False  # a relative import that climbs out of the top-level package
    if target == package or target not in OURS:
        return True  # itself, the standard library or a third party
    allowed = allowed_for(package)
    return allowed is ANYTHING or target in allowed


def check_source(source: str, relpath: str) -> list[str]:
    """Violations in one file, as 'path:line: import ... (why)'; relpath is from the repo root."""
    parts = relpath.split("/")
    violations = []
    for node, target in imported_top_levels(ast.parse(source, relpath), parts[:-1]):
        if is_allowed(target, parts[0]):
            continue
        why = f"{parts[0]} may not import {target}" if target else "beyond the top-level package"
        statement = " ".join((ast.get_source_segment(source, node) or "?").split())
        violations.append(f"{relpath}:{node.lineno}: {statement}  ({why})")
    return violations


def our_python_files() -> list[Path]:
    packages = sorted(p for p in (set(MAY_IMPORT) | SHARED) if (REPO_ROOT / p).is_dir())
    return [f for p in packages for f in sorted((REPO_ROOT / p).rglob("*.py"))]


def test_no_import_goes_against_the_design() -> None:
    files = our_python_files()
    assert files, "found no package to check: is REPO_ROOT right?"
    violations = [
        v
        for f in files
        for v in check_source(f.read_text(encoding="utf-8"), f.relative_to(REPO_ROOT).as_posix())
    ]
    assert not violations, "imports against DESIGN.md's table:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    ("relpath", "source", "expected"),
    [
        (
            "ring/builder.py",
            "import os\n\nimport objectd.diskfile\n",
            "ring/builder.py:3: import objectd.diskfile  (ring may not import objectd)",
        ),
        (
            "ring/builder.py",
            "from proxy import (\n    app,\n)\n",
            "ring/builder.py:1: from proxy import ( app, )  (ring may not import proxy)",
        ),
        (
            "ring/builder.py",
            "import tests.helpers\n",
            "ring/builder.py:1: import tests.helpers  (ring may not import tests)",
        ),
        (
            "compute/host.py",
            "def f():\n    from ring import Ring\n",
            "compute/host.py:2: from ring import Ring  (compute may not import ring)",
        ),
        (
            # The daemons' home: only tools/ (and tests/) may import it.
            "objectd/engine.py",
            "from replicator.object_updater import ObjectUpdater\n",
            "objectd/engine.py:1: from replicator.object_updater import ObjectUpdater  "
            "(objectd may not import replicator)",
        ),
        (
            "replicator/object_updater.py",
            "import proxy.backend\n",
            "replicator/object_updater.py:1: import proxy.backend  "
            "(replicator may not import proxy)",
        ),
        (
            "objectd/server.py",
            "from .. import accountd\n",
            "objectd/server.py:1: from .. import accountd  (beyond the top-level package)",
        ),
    ],
)
def test_checker_catches_a_forbidden_import(relpath: str, source: str, expected: str) -> None:
    assert check_source(source, relpath) == [expected]


@pytest.mark.parametrize(
    ("relpath", "source"),
    [
        ("proxy/app.py", "import os\nfrom ring import Ring\nimport identity.tokens\n"),
        ("ring/sub/plan.py", "from . import tiers\nfrom ..device import Device\n"),
        ("replicator/object.py", "from objectd.diskfile import DiskFile\n"),
        ("replicator/container_dbs.py", "from containerd_.info import decode_record\n"),
        ("replicator/object_updater.py", "from service.backend_client import BackendClient\n"),
        ("tools/serve.py", "from replicator.process import serve\n"),
        ("tools/cli.py", "import objectd, proxy, compute\n"),
    ],
)
def test_checker_allows_what_the_table_allows(relpath: str, source: str) -> None:
    assert check_source(source, relpath) == []
