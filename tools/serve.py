"""`torus serve SERVICE --config FILE`: run one storage server in the foreground.

``SERVICES`` names each server's composition root as ``module:function``; a new server adds
one line.  The function's ``config`` parameter is annotated with its config class, which
names the TOML table it is loaded from (``[object]`` for ``object``); ``[cluster]`` goes to
its ``cluster`` parameter.  ``TORUS_<TABLE>_<KEY>`` environment variables override the file
(service/config.py).
"""

from __future__ import annotations

import functools
import importlib
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
}
EXIT_CONFIG = 2  # the configuration cannot be used: nothing was started


def load_factory(service: str) -> tuple[Callable[..., Any], type]:
    """The service's ``build_app`` and its config class (from the ``config`` annotation)."""
    module_name, _, function_name = SERVICES[service].partition(":")
    build_app = getattr(importlib.import_module(module_name), function_name)
    config_cls = typing.get_type_hints(build_app).get("config")
    if not isinstance(config_cls, type):
        raise TypeError(f"{SERVICES[service]}: its config parameter has no class annotation")
    return build_app, config_cls


def run(service: str, config_path: str, env: Mapping[str, str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the exit status."""
    from service.runner import serve  # lazy: `torus --help` should not load aiohttp

    env = os.environ if env is None else env
    build_app, config_cls = load_factory(service)
    try:
        document = load_toml(config_path)
        cluster = load_section(document, "cluster", ClusterConfig, env=env)
        config = load_section(document, service, config_cls, env=env)
    except ConfigError as exc:
        print(f"torus serve {service}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return serve(functools.partial(build_app, cluster=cluster), config)
