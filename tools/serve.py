"""`torus serve SERVICE --config FILE`: run one server, or one daemon, in the foreground.

``SERVICES`` names each server's composition root as ``module:function``; a new server adds
one line.  ``DAEMONS`` does the same for the background daemons (replicator/): each names an
async context manager that opens the daemon, run by replicator/process.py, once with
``--once`` (Swift's ``swift-object-updater ... once``) or every ``interval_s`` until SIGTERM.
The function's parameters say which TOML tables it is given:

- ``config``: annotated with the service's own config class, loaded from the table named like
  the service (``[object]`` for ``object``, ``[proxy]`` for ``proxy``; dashes become
  underscores: ``[object_updater]`` for ``object-updater``, so that ``TORUS_OBJECT_UPDATER_*``
  variables can override it);
- ``cluster``: ``[cluster]``;
- any other parameter annotated with a config dataclass: the table named like the parameter
  (the proxy's ``identity: IdentityConfig`` gets ``[identity]``).  Parameters with other
  annotations (an engine, a clock: test seams) keep their defaults.

``TORUS_<TABLE>_<KEY>`` environment variables override the file (service/config.py).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Any

from service.config import ClusterConfig, ConfigError, load_section, load_toml

SERVICES: dict[str, str] = {
    "object": "objectd.server:build_app",
    "container": "containerd_.server:build_app",
    "account": "accountd.server:build_app",
    "proxy": "proxy.server:build_app",
    "identity": "identity.server:build_app",
}
# Background daemons: `module:function` of the async context manager that opens each one.
DAEMONS: dict[str, str] = {
    "object-updater": "replicator.object_updater:open_object_updater",
    "container-updater": "replicator.container_updater:open_container_updater",
    "object-replicator": "replicator.object_replicator:open_object_replicator",
    "object-auditor": "replicator.object_auditor:open_object_auditor",
    "container-auditor": "replicator.container_auditor:open_container_auditor",
    "account-auditor": "replicator.account_auditor:open_account_auditor",
    "account-reaper": "replicator.account_reaper:open_account_reaper",
    "container-replicator": "replicator.container_replicator:open_container_replicator",
    "account-replicator": "replicator.account_replicator:open_account_replicator",
    "object-expirer": "replicator.object_expirer:open_object_expirer",
}
EXIT_CONFIG = 2  # the configuration cannot be used: nothing was started
EXIT_NOT_BUILT = 3  # the service's module does not exist yet
# Parameters every build_app gets the same way; the rest are found by annotation.
_FIXED_PARAMETERS = ("config", "cluster")


def _target(service: str) -> str:
    return SERVICES[service] if service in SERVICES else DAEMONS[service]


def table_name(service: str) -> str:
    """The TOML table of ``service``'s own config: ``object_updater`` for ``object-updater``."""
    return service.replace("-", "_")


def load_factory(service: str) -> tuple[Callable[..., Any], type]:
    """The service's ``build_app`` (a daemon's opener) and its config class (from the
    ``config`` annotation)."""
    module_name, _, function_name = _target(service).partition(":")
    build_app = getattr(importlib.import_module(module_name), function_name)
    config_cls = typing.get_type_hints(build_app).get("config")
    if not isinstance(config_cls, type):
        raise TypeError(f"{_target(service)}: its config parameter has no class annotation")
    return build_app, config_cls


def table_parameters(build_app: Callable[..., Any]) -> dict[str, type]:
    """``build_app``'s parameters, other than config and cluster, typed as config dataclasses.

    Each maps to the class its table is loaded into: ``{"identity": IdentityConfig}``.
    """
    hints = typing.get_type_hints(build_app)
    found: dict[str, type] = {}
    for name in inspect.signature(build_app).parameters:
        kind = hints.get(name)
        if name in _FIXED_PARAMETERS or not isinstance(kind, type):
            continue
        if dataclasses.is_dataclass(kind):
            found[name] = kind
    return found


def load_arguments(
    service: str,
    build_app: Callable[..., Any],
    config_cls: type,
    document: Mapping[str, Any],
    env: Mapping[str, str],
) -> tuple[Any, dict[str, Any]]:
    """The service's own config, and every other argument build_app takes from the file."""
    arguments: dict[str, Any] = {
        "cluster": load_section(document, "cluster", ClusterConfig, env=env)
    }
    config = load_section(document, table_name(service), config_cls, env=env)
    for name, cls in table_parameters(build_app).items():
        arguments[name] = load_section(document, name, cls, env=env)
    return config, arguments


def run(
    service: str, config_path: str, env: Mapping[str, str] | None = None, *, once: bool = False
) -> int:
    """Serve until SIGTERM/SIGINT (a daemon with ``once``: one pass); the exit status."""
    env = os.environ if env is None else env
    if once and service not in DAEMONS:
        print(f"torus serve {service}: --once is for daemons only", file=sys.stderr)
        return EXIT_CONFIG
    try:
        build_app, config_cls = load_factory(service)
    except ModuleNotFoundError as exc:
        module_name = _target(service).partition(":")[0]
        if exc.name is None or not f"{module_name}.".startswith(f"{exc.name}."):
            raise  # something the module imports is missing: the traceback says what
        print(f"torus serve {service}: {module_name} is not built yet", file=sys.stderr)
        return EXIT_NOT_BUILT
    try:
        document = load_toml(config_path)
        config, arguments = load_arguments(service, build_app, config_cls, document, env)
    except ConfigError as exc:
        print(f"torus serve {service}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    factory = functools.partial(build_app, **arguments)
    if service in DAEMONS:
        from replicator.process import serve as serve_daemon  # lazy, as the runner below

        return serve_daemon(factory, config, once=once)
    from service.runner import serve  # lazy: `torus --help` should not load aiohttp

    return serve(factory, config)
