"""`torus serve SERVICE --config FILE`: run one server in the foreground.

``SERVICES`` names each server's composition root as ``module:function``; a new server adds
one line.  The function's parameters say which TOML tables it is given:

- ``config``: annotated with the service's own config class, loaded from the table named like
  the service (``[object]`` for ``object``, ``[proxy]`` for ``proxy``);
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
EXIT_CONFIG = 2  # the configuration cannot be used: nothing was started
EXIT_NOT_BUILT = 3  # the service's module does not exist yet
# Parameters every build_app gets the same way; the rest are found by annotation.
_FIXED_PARAMETERS = ("config", "cluster")


def load_factory(service: str) -> tuple[Callable[..., Any], type]:
    """The service's ``build_app`` and its config class (from the ``config`` annotation)."""
    module_name, _, function_name = SERVICES[service].partition(":")
    build_app = getattr(importlib.import_module(module_name), function_name)
    config_cls = typing.get_type_hints(build_app).get("config")
    if not isinstance(config_cls, type):
        raise TypeError(f"{SERVICES[service]}: its config parameter has no class annotation")
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
    config = load_section(document, service, config_cls, env=env)
    for name, cls in table_parameters(build_app).items():
        arguments[name] = load_section(document, name, cls, env=env)
    return config, arguments


def run(service: str, config_path: str, env: Mapping[str, str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the exit status."""
    from service.runner import serve  # lazy: `torus --help` should not load aiohttp

    env = os.environ if env is None else env
    try:
        build_app, config_cls = load_factory(service)
    except ModuleNotFoundError as exc:
        module_name = SERVICES[service].partition(":")[0]
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
    return serve(functools.partial(build_app, **arguments), config)
