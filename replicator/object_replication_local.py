"""Which ring devices are this node's: Swift's ``whataremyips`` and ``is_local_device``.

A replicator bound to ``0.0.0.0`` (or ``::``) must still tell its own devices from another
host's ``sda`` at the same port: a device counts as local when its address is one of this
host's and its port is the object server's ``bind_port``.  This host's addresses come from
``/proc/net/fib_trie`` (IPv4: the ``/32 host LOCAL`` entries) and ``/proc/net/if_inet6``
(Linux; the stdlib has no portable call), plus the loopback ones; without ``/proc``, the
addresses the host name resolves to.
"""

from __future__ import annotations

import ipaddress
import socket

from ring.device import Device as RingDevice

ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})
_LOOPBACK = frozenset({"127.0.0.1", "::1"})


def local_ips() -> frozenset[str]:
    """This host's IP addresses, normalised (``ipaddress`` forms)."""
    found = set(_LOOPBACK)
    try:
        found |= _fib_trie_ipv4(_read("/proc/net/fib_trie"))
        found |= _if_inet6(_read("/proc/net/if_inet6"))
    except OSError:
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None)
        except OSError:
            infos = []
        found |= {str(info[4][0]) for info in infos}
    return frozenset(_normal(ip) for ip in found if _normal(ip))


def is_local_device(
    node: RingDevice, device: str, *, bind_ip: str, bind_port: int, my_ips: frozenset[str]
) -> bool:
    """Whether ``node`` (a ring device) is the local ``device`` of this object server."""
    if node.device != device or bind_port not in (node.port, node.replication_port):
        return False
    addresses = {_normal(node.ip), _normal(node.replication_ip)}
    if bind_ip in ANY_ADDRESS:
        return bool(addresses & my_ips)
    return _normal(bind_ip) in addresses


def _fib_trie_ipv4(text: str) -> set[str]:
    found, last = set(), None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|-- "):
            last = stripped[4:]
        elif stripped.startswith("/32 host LOCAL") and last is not None:
            found.add(last)
    return found


def _if_inet6(text: str) -> set[str]:
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if fields and len(fields[0]) == 32:
            found.add(":".join(fields[0][i : i + 4] for i in range(0, 32, 4)))
    return found


def _normal(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip.strip("[]").split("%")[0]))
    except ValueError:
        return ""


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()
