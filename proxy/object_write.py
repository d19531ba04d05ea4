"""Object writes other than PUT (POST, DELETE), and what every object write shares.

Every write carries the proxy's one X-Timestamp for the request, and names the container
replicas the object servers tell about the change (``X-Container-Host/-Partition/-Device``;
Swift's spread: container replica ``j`` goes with object replica ``j mod n``).  A write with an
X-Delete-At also names, spread the same way, the replicas of its expirer queue container
(``X-Delete-At-Container/-Host/-Partition/-Device``: service/update_targets.py), where each
object server records the object for the expirer.  A write to a
container that does not exist is a 404, as Swift answers (503 if no container replica
answered).  POST and DELETE go to every replica at once; the quorum's answer is the client's
(``backend.quorum_request``).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from aiohttp import web

from ring.device import Device
from service.update_targets import EXPIRING_ACCOUNT, expiring_container

from . import authz, constraints, infocache
from .backend import backend_headers, quorum_request, request_timestamp
from .context import Proxy
from .paths import SwiftPath


def object_names(path: SwiftPath) -> tuple[str, str, str]:
    assert path.container is not None and path.obj is not None
    return path.account, path.container, path.obj


def object_path_for(part: int, path: SwiftPath) -> Callable[[Device], str]:
    account, container, obj = object_names(path)
    quoted = quote(f"/{part}/{account}/{container}/{obj}", safe="/")
    return lambda node: f"/{node.device}{quoted}"  # ring device names need no quoting


def container_update_headers(
    proxy: Proxy, base: dict[str, str], path: SwiftPath, replicas: int
) -> list[dict[str, str]]:
    """``base`` once per object replica, each naming the container replicas it updates."""
    account, container, _ = object_names(path)
    cpart, cnodes = proxy.container_ring.get_nodes(account, container)
    hosts: list[list[str]] = [[] for _ in range(replicas)]
    devices: list[list[str]] = [[] for _ in range(replicas)]
    for j, node in enumerate(cnodes):
        ip = f"[{node.ip}]" if ":" in node.ip else node.ip
        hosts[j % replicas].append(f"{ip}:{node.port}")
        devices[j % replicas].append(node.device)
    queue = _queue_targets(proxy, base, replicas)
    out = []
    for i in range(replicas):
        headers = dict(base)
        for name in _DELETE_AT_TARGET_HEADERS:  # only the proxy names them, never a client
            headers.pop(name, None)
        if hosts[i]:
            headers["X-Container-Host"] = ",".join(hosts[i])
            headers["X-Container-Device"] = ",".join(devices[i])
            headers["X-Container-Partition"] = str(cpart)
        if queue is not None and queue[i] is not None:
            headers.update(queue[i])
        out.append(headers)
    return out


_DELETE_AT_TARGET_HEADERS = (
    "X-Delete-At-Container",
    "X-Delete-At-Host",
    "X-Delete-At-Device",
    "X-Delete-At-Partition",
)


def _queue_targets(
    proxy: Proxy, base: dict[str, str], replicas: int
) -> list[dict[str, str] | None] | None:
    """Per object replica, the X-Delete-At-* headers naming its share of the queue
    container's replicas (Swift's spread, as for the container); None without X-Delete-At."""
    text = base.get("X-Delete-At")
    if text is None or not text.isascii() or not text.isdigit():
        return None  # PUT and POST checked it (delete_at_header); a DELETE's means nothing
    container = expiring_container(int(text))
    qpart, qnodes = proxy.container_ring.get_nodes(EXPIRING_ACCOUNT, container)
    shares: list[list[Device]] = [[] for _ in range(replicas)]
    for j, node in enumerate(qnodes):
        shares[j % replicas].append(node)
    out: list[dict[str, str] | None] = []
    for share in shares:
        if not share:
            out.append(None)
            continue
        hosts = [f"[{n.ip}]:{n.port}" if ":" in n.ip else f"{n.ip}:{n.port}" for n in share]
        out.append(
            {
                "X-Delete-At-Container": container,
                "X-Delete-At-Host": ",".join(hosts),
                "X-Delete-At-Device": ",".join(n.device for n in share),
                "X-Delete-At-Partition": str(qpart),
            }
        )
    return out


async def check_container(proxy: Proxy, path: SwiftPath) -> web.Response | None:
    """None if the object's container exists; else the answer (404, or 503 if unknown)."""
    account, container, _ = object_names(path)
    info = await infocache.get_container_info(proxy, account, container)
    if info.exists:
        return None
    if info.status == infocache.UNAVAILABLE:
        return web.Response(status=503, text="Service Unavailable")
    return web.Response(status=404, text="Not Found")


def delete_at_header(request: web.Request, headers: dict[str, str]) -> None:
    """X-Delete-After becomes X-Delete-At (counted from the request's X-Timestamp); 400 for
    a value that is not an integer or not in the future."""
    at = constraints.delete_at(request.headers, request_timestamp(request).seconds)
    headers.pop("X-Delete-After", None)  # names are title-cased (backend_headers)
    if at is not None:
        headers["X-Delete-At"] = str(at)


async def post(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    constraints.check_metadata(request.headers, "object")
    content_type = request.headers.get("Content-Type")
    if content_type is not None and not _clean_utf8(content_type):
        raise web.HTTPBadRequest(text="Invalid Content-Type")
    missing = await check_container(proxy, path)
    if missing is not None:
        return missing
    headers = backend_headers(request)
    delete_at_header(request, headers)
    return await _replicated(proxy, path, "POST", headers)


async def delete(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    missing = await check_container(proxy, path)
    if missing is not None:
        return missing
    return await _replicated(proxy, path, "DELETE", backend_headers(request))


async def _replicated(
    proxy: Proxy, path: SwiftPath, method: str, headers: dict[str, str]
) -> web.Response:
    account, container, obj = object_names(path)
    ring = proxy.object_ring
    part, primaries = ring.get_nodes(account, container, obj)
    per_replica = container_update_headers(proxy, headers, path, len(primaries))
    response = await quorum_request(
        proxy, ring, part, method, object_path_for(part, path), per_replica
    )
    if response.status == 202 or response.status == 204:
        response.body = b""  # Swift's 202/204 carry no body
    return response


def _clean_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
