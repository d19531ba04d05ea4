"""Manifest objects: one object made of others (S3 multipart uploads; Swift's static large
objects use the same idea).

A manifest is a small object whose body lists its segments, in order, as JSON (Swift SLO's
stored form, trimmed to what reading needs)::

    [{"name": "/<container>/<object>", "hash": "<md5>", "bytes": <size>}, ...]

and whose sysmeta marks it: ``X-Object-Sysmeta-Manifest-Size`` (the whole object's bytes) and
``X-Object-Sysmeta-Manifest-Etag`` (the ETag clients see: an S3 multipart upload's
``<md5 of the part md5s>-<N>``).  The object servers evaluate If-Match/If-None-Match against
that ETag (``X-Backend-Etag-Is-At``), ignore a Range on a manifest (so the proxy always gets
the whole list), and put that size and ETag in the container listing (the container update
overrides), so listings and HEADs show the whole object.  Segments live in the manifest's own
account (an S3 upload's parts in ``<bucket>+segments``): reading the manifest grants them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MANIFEST_SIZE = "X-Object-Sysmeta-Manifest-Size"
MANIFEST_ETAG = "X-Object-Sysmeta-Manifest-Etag"
ETAG_IS_AT = "X-Backend-Etag-Is-At"
# What every object GET/HEAD asks of the object servers, so that a manifest answers as above
# (a conditional PUT asks for the ETag too: proxy/object_put.py).
GET_HEADERS = {
    ETAG_IS_AT: MANIFEST_ETAG,
    "X-Backend-Ignore-Range-If-Metadata-Present": MANIFEST_SIZE,
}
MAX_MANIFEST_BYTES = 4 << 20  # 10,000 segments of long names fit well within it
MAX_SEGMENTS = 10_000


class BadManifest(ValueError):
    """A manifest body that does not decode: a bug or a corrupt object (a 500 to serve)."""


@dataclass(frozen=True, slots=True)
class Segment:
    container: str
    obj: str
    etag: str
    size_bytes: int


def encode(segments: Sequence[Segment]) -> bytes:
    rows = [
        {"name": f"/{s.container}/{s.obj}", "hash": s.etag, "bytes": s.size_bytes} for s in segments
    ]
    return json.dumps(rows, separators=(",", ":")).encode()


def decode(body: bytes) -> list[Segment]:
    try:
        rows = json.loads(body)
        segments = []
        for row in rows:
            container, _, obj = row["name"].lstrip("/").partition("/")
            size = row["bytes"]
            if not container or not obj or not isinstance(size, int) or size < 0:
                raise ValueError(f"bad segment {row!r}")
            segments.append(Segment(container, obj, str(row["hash"]), size))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BadManifest(str(exc)) from exc
    if len(segments) > MAX_SEGMENTS:
        raise BadManifest(f"{len(segments)} segments")
    return segments


def total_size(segments: Sequence[Segment]) -> int:
    return sum(s.size_bytes for s in segments)


def pieces(
    segments: Sequence[Segment], start: int, stop: int
) -> Iterator[tuple[Segment, int, int]]:
    """The ``(segment, first, stop)`` byte spans, within each segment, that bytes
    ``[start, stop)`` of the whole object cover, in order."""
    offset = 0
    for segment in segments:
        end = offset + segment.size_bytes
        if end > start and offset < stop:
            yield segment, max(start - offset, 0), min(stop, end) - offset
        if end >= stop:
            return
        offset = end
