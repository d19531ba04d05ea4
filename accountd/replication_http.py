"""``REPLICATE /<device>/<partition>/<account>``: the account replicator's receiver
(replicator/account_replicator.py sends; accountd/replication_broker.py merges).

It travels as a POST naming the method in ``X-HTTP-Method-Override`` (service/methods.py), so
the account POST handler hands it here.  The body is JSON, one of two steps:

- ``{"op": "sync", "sender": <hex>, "record": <account record with "rows_digest">}``: merge
  the record (creating the account here if new) and answer ``{"in_sync": <this replica holds
  rows of that digest>, "record": <the merged record>, "container_count", "object_count",
  "bytes_used"}``;
- ``{"op": "merge", "sender": ..., "rows": [<row>, ...], "point": ...}``: merge a page of rows
  (``point`` is ignored: the account keeps no sync points); ``{"merged": <rows>}``.

Wire forms of records and rows: accountd/replication.py.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from service.errors import BadInput
from service.names import BackendPath

from .app_keys import BROKER
from .replication import record_from_wire, record_to_wire, row_from_wire

MAX_BODY_BYTES = 16 << 20
MAX_ROWS = 10_000


async def replicate(request: web.Request, path: BackendPath) -> web.Response:
    body = await _json_body(request)
    broker = request.app[BROKER]
    op = body.get("op")
    if op == "sync":
        wire = body.get("record")
        digest = wire.get("rows_digest") if isinstance(wire, dict) else None
        if not isinstance(digest, str):
            raise BadInput("the record's rows_digest must be a string")
        record = record_from_wire(wire)
        merged, in_sync = await broker.receive_record(path.device, path.account, record, digest)
        answer: dict[str, Any] = {
            "in_sync": in_sync,
            "record": record_to_wire(merged),
            "container_count": merged.container_count,
            "object_count": merged.object_count,
            "bytes_used": merged.bytes_used,
        }
    elif op == "merge":
        raw_rows = body.get("rows")
        if not isinstance(raw_rows, list) or len(raw_rows) > MAX_ROWS:
            raise BadInput(f"rows must be a list of at most {MAX_ROWS} rows")
        rows = [row_from_wire(row) for row in raw_rows]
        await broker.receive_rows(path.device, path.account, rows)
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
