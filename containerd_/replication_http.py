"""``REPLICATE /<device>/<partition>/<account>/<container>``: the container replicator's
receiver (replicator/container_replicator.py sends; containerd_/replication_broker.py merges).

It travels as a POST naming the method in ``X-HTTP-Method-Override`` (service/methods.py), so
the container POST handler hands it here.  The body is JSON, one of two steps:

- ``{"op": "sync", "sender": <replica id, hex>, "record": <container record>}``: merge the
  sender's record (creating the container here if new) and answer ``{"point": <the sender's
  sync point here, or null: send every row>, "record": <the merged record>, "object_count",
  "bytes_used"}``;
- ``{"op": "merge", "sender": ..., "rows": [<row>, ...], "point": <seq or null>}``: merge a
  page of rows and, if given, record ``point`` as the sender's new sync point; ``{"merged":
  <rows>}``.

Wire forms of records and rows: containerd_/replication.py.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from service.errors import BadInput
from service.names import BackendPath

from .app_keys import BROKER
from .changes import SENDER_BYTES
from .replication import ROWS_PER_PAGE, record_from_wire, record_to_wire, row_from_wire

MAX_BODY_BYTES = 64 << 20  # a page of 1000 rows of 1 KiB names with long content types


async def replicate(request: web.Request, path: BackendPath) -> web.Response:
    assert path.container is not None
    body = await _json_body(request)
    broker = request.app[BROKER]
    sender = _sender(body.get("sender"))
    op = body.get("op")
    if op == "sync":
        record = record_from_wire(body.get("record"))
        merged, point = await broker.receive_record(
            path.device, path.account, path.container, record, sender
        )
        answer: dict[str, Any] = {
            "point": point,
            "record": record_to_wire(merged),
            "object_count": merged.object_count,
            "bytes_used": merged.bytes_used,
        }
    elif op == "merge":
        raw_rows = body.get("rows")
        if not isinstance(raw_rows, list) or len(raw_rows) > 10 * ROWS_PER_PAGE:
            raise BadInput("rows must be a list of at most 10 pages of rows")
        point = body.get("point")
        if point is not None and (isinstance(point, bool) or not isinstance(point, int)):
            raise BadInput(f"point must be an integer or null, not {point!r}")
        rows = [row_from_wire(row) for row in raw_rows]
        await broker.receive_rows(path.device, path.account, path.container, sender, rows, point)
        answer = {"merged": len(rows)}
    else:
        raise BadInput(f"unknown REPLICATE op {op!r}")
    return web.json_response(answer)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise BadInput("a REPLICATE body must be JSON") from None
    if not isinstance(body, dict):
        raise BadInput("a REPLICATE body must be a JSON object")
    return body


def _sender(value: Any) -> bytes:
    try:
        sender = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        sender = b""
    if len(sender) != SENDER_BYTES:
        raise BadInput(f"sender must be {SENDER_BYTES} bytes in hex, not {value!r}")
    return sender
