"""DATA/torus.toml for an all-in-one cluster: written once, with fresh secrets, then reused.

Every server of the cluster reads this one file (``torus serve SERVICE --config``), as every
host of a multi-host cluster would read its copy.  What differs between the four storage nodes
on one machine (port, devices directory) is not in the file: `torus up` passes it to each
process as ``TORUS_<TABLE>_<KEY>`` environment variables (service/config.py), the way a unit
file would on a real host.  The secrets are made once with ``secrets`` and never rewritten: the
placement of every stored name depends on ``hash_path_secret``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.config import ConfigError, load_toml
from tools.aio_layout import (
    ALL_NODE_DAEMONS,
    DAEMON_INTERVALS_S,
    DEFAULT_IDENTITY_PORT,
    LOOPBACK,
    PROXY_WORKERS,
    SHUTDOWN_GRACE_S,
    STORAGE_SERVICES,
    DataDir,
)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
HEADER = """\
# Torus all-in-one cluster, written by `torus up`, which reuses it as it is: edit it freely,
# but keep the secrets (every stored name's placement depends on hash_path_secret).
# Every server reads this file: torus serve SERVICE --config {config}
# `torus up` sets what differs between processes with environment variables:
#   TORUS_PROXY_BIND_PORT        the proxy's port (--port)
#   TORUS_IDENTITY_BIND_PORT     [identity] bind_port below
#   TORUS_IDENTITY_STORAGE_URL_BASE
#                                the proxy's URL, for the identity service's v1 answers
#                                (the proxy's own /auth/v1.0 builds it from the request)
#   TORUS_OBJECT_BIND_PORT, TORUS_CONTAINER_BIND_PORT, TORUS_ACCOUNT_BIND_PORT
#                                storage node N's ports, as its device dN has them in the rings
#   TORUS_OBJECT_DEVICES, TORUS_CONTAINER_DEVICES, TORUS_ACCOUNT_DEVICES
#                                storage node N's devices directory, {root}/nodeN
#   TORUS_OBJECT_UPDATER_DEVICES, TORUS_CONTAINER_UPDATER_DEVICES (and _MOUNT_CHECK=false)
#                                the same for node N's daemons (torus serve object-updater)
#   TORUS_OBJECT_REPLICATOR_DEVICES, _BIND_IP, _BIND_PORT (and _MOUNT_CHECK=false)
#                                node N's object replicator: its devices, and the object
#                                server's address, by which it finds its devices in the ring
"""


def toml_value(value: Any) -> str:
    """A TOML literal for a str, bool, int, float or path (strings: JSON-escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    raise TypeError(f"no TOML literal for {value!r}")


def toml_key(key: str) -> str:
    """A bare key where TOML allows one, else a quoted one."""
    return key if _BARE_KEY.fullmatch(key) else toml_value(key)


def render(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text for ``{table: {key: value}}``; a dict value becomes ``[table.key]``."""
    blocks = []
    for table, values in tables.items():
        lines = [f"[{table}]"]
        subtables = []
        for key, value in values.items():
            if isinstance(value, Mapping):
                subtables.append((key, value))
            else:
                lines.append(f"{toml_key(key)} = {toml_value(value)}")
        for key, sub in subtables:
            lines += ["", f"[{table}.{toml_key(key)}]"]
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in sub.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def new_config(
    data: DataDir, *, proxy_port: int, identity_port: int, users: Mapping[str, str]
) -> str:
    """A new cluster's torus.toml text, with freshly made secrets."""
    server = {"bind_ip": LOOPBACK, "shutdown_grace_s": SHUTDOWN_GRACE_S}
    tables: dict[str, dict[str, Any]] = {
        "cluster": {"hash_path_secret": secrets.token_hex(32), "ring_dir": data.rings},
        "proxy": {**server, "bind_port": proxy_port, "workers": PROXY_WORKERS},
        "identity": {
            **server,
            "bind_port": identity_port,
            "token_secret": secrets.token_hex(32),
            "users": dict(users),
        },
    }
    for service in STORAGE_SERVICES:
        tables[service] = {**server, "mount_check": False}  # devices and bind_port: per node
    for daemon in ALL_NODE_DAEMONS:  # devices (and bind_ip, bind_port): per node
        tables[daemon.replace("-", "_")] = {
            "mount_check": False,
            "interval_s": DAEMON_INTERVALS_S[daemon],
        }
    return HEADER.format(config=data.config, root=data.root) + "\n" + render(tables)


def ensure_config(
    data: DataDir, *, proxy_port: int, identity_port: int, users: Mapping[str, str]
) -> bool:
    """Write DATA/torus.toml unless it exists; whether it was written.

    Owner-only (0600): it holds the secrets and the users' keys.
    """
    if data.config.exists():
        return False
    text = new_config(data, proxy_port=proxy_port, identity_port=identity_port, users=users)
    tmp = data.config.with_name(data.config.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, data.config)
    return True


def read_config(data: DataDir) -> dict[str, Any]:
    """The parsed torus.toml; ``ConfigError`` if it cannot be read or lacks what `up` needs."""
    document = load_toml(data.config)
    cluster = document.get("cluster")
    if not isinstance(cluster, Mapping) or not cluster.get("hash_path_secret"):
        raise ConfigError(f"{data.config}: [cluster] hash_path_secret is required")
    return document


def identity_port(document: Mapping[str, Any]) -> int:
    port = document.get("identity", {}).get("bind_port", DEFAULT_IDENTITY_PORT)
    if not isinstance(port, int) or isinstance(port, bool):
        raise ConfigError(f"[identity] bind_port must be an integer, got {port!r}")
    return port


def ring_dir(document: Mapping[str, Any], data: DataDir) -> Path:
    """Where the rings are: [cluster] ring_dir, DATA/rings unless the operator changed it."""
    return Path(document["cluster"].get("ring_dir", data.rings))


def users(document: Mapping[str, Any]) -> dict[str, str]:
    """``{"account:user": "key .group ..."}`` from [identity.users]."""
    table = document.get("identity", {}).get("users", {})
    return {str(name): str(value) for name, value in table.items()}
