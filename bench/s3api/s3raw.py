"""The measured S3 calls over bench/swiftapi's raw HTTP client, signed as boto3 signs them.

What boto3 1.44 (botocore's defaults, ``request_checksum_calculation`` and
``response_checksum_validation`` both ``when_supported``) sends over plain http, and so what
these calls send, path-style (``/bucket/key``):

- PutObject: the payload signed (``x-amz-content-sha256`` is the body's hex SHA-256, never
  UNSIGNED-PAYLOAD over http; the same for 64 MiB, as one PutObject), a CRC32 of the body in
  ``x-amz-checksum-crc32`` with ``x-amz-sdk-checksum-algorithm: CRC32``, and
  ``Expect: 100-continue``; signed headers host, x-amz-checksum-crc32, x-amz-content-sha256,
  x-amz-date, x-amz-sdk-checksum-algorithm.
- GetObject: ``x-amz-checksum-mode: ENABLED`` (signed), the empty payload's SHA-256.

boto3 waits for the 100 Continue (up to a second) before it sends a body; these calls send
the body at once, as RFC 9110 lets a client do (``--no-expect`` leaves the header out), so
neither the load generator nor a round trip sits between the servers and the body.  The GET's
returned checksum is not verified here (boto3 would: a CRC32 of the body, client CPU only).

Every status is counted (``statuses``), so a run reports its non-2xx answers by code.
"""

from __future__ import annotations

import base64
import hashlib
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from api import Body, StatusError
from measure import Meter
from rawhttp import Pool
from signer import EMPTY_SHA256, Signer


@dataclass(frozen=True)
class Payload:
    """What a PUT of ``body`` declares about it: computed once, every PUT sends the same bytes."""

    sha256_hex: str
    crc32_b64: str

    @classmethod
    def of(cls, body: Body) -> Payload:
        sha, crc = hashlib.sha256(), 0
        for piece in body.pieces:
            sha.update(piece)
            crc = zlib.crc32(piece, crc)
        return cls(sha.hexdigest(), base64.b64encode(crc.to_bytes(4, "big")).decode())


class RawS3API:
    """Object PUT/GET/DELETE of one endpoint, each signed with SigV4 (header auth)."""

    def __init__(self, endpoint: str, signer: Signer, meter: Meter, *, expect: bool = True):
        url = urlsplit(endpoint)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"the raw S3 client speaks plain http only, not {endpoint}")
        self.pool = Pool(url.hostname, url.port or 80, meter)
        self.host = url.netloc
        self.signer = signer
        self.expect = expect
        self.statuses: Counter[int] = Counter()
        self.sign_s = 0.0  # CPU spent forming and signing request heads
        self.signed = 0

    def _head(self, method: str, path: str, amz: dict[str, str], payload_sha256: str) -> str:
        """Request line and signed headers (no final empty line)."""
        started = time.thread_time()  # CPU, not wall: a busy box preempts us mid-signing
        amz_date = self.signer.amz_date()
        signed = {
            "host": self.host,
            "x-amz-content-sha256": payload_sha256,
            "x-amz-date": amz_date,
            **amz,
        }
        auth = self.signer.authorization(method, path, signed, payload_sha256, amz_date)
        lines = "".join(f"{name}: {value}\r\n" for name, value in signed.items())
        self.sign_s += time.thread_time() - started
        self.signed += 1
        return f"{method} {path} HTTP/1.1\r\n{lines}Authorization: {auth}\r\n"

    def _expect(self, status: int, method: str, path: str, statuses: tuple[int, ...]) -> None:
        self.statuses[status] += 1
        if status not in statuses:
            raise StatusError(method, path, status)

    async def put_object(self, bucket: str, key: str, body: Body, payload: Payload) -> int:
        path = target(bucket, key)
        amz = {"x-amz-checksum-crc32": payload.crc32_b64, "x-amz-sdk-checksum-algorithm": "CRC32"}
        head = self._head("PUT", path, amz, payload.sha256_hex)
        head += f"Content-Length: {body.size_bytes}\r\n"
        head += "Expect: 100-continue\r\n\r\n" if self.expect else "\r\n"
        response = await self.pool.request(head.encode(), body.pieces)
        self._expect(response.status, "PUT", path, (200,))
        return body.size_bytes

    async def get_object(self, bucket: str, key: str) -> int:
        path = target(bucket, key)
        head = self._head("GET", path, {"x-amz-checksum-mode": "ENABLED"}, EMPTY_SHA256) + "\r\n"
        response = await self.pool.request(head.encode())
        self._expect(response.status, "GET", path, (200,))
        return response.body_bytes  # exactly Content-Length's, or rawhttp raised

    async def delete_object(self, bucket: str, key: str) -> None:
        path = target(bucket, key)
        head = self._head("DELETE", path, {}, EMPTY_SHA256) + "Content-Length: 0\r\n\r\n"
        response = await self.pool.request(head.encode())
        self._expect(response.status, "DELETE", path, (204,))

    def close(self) -> None:
        self.pool.close()


def target(bucket: str, key: str) -> str:
    """The path-style request path, encoded as botocore encodes it (``/`` and ``~`` kept)."""
    return f"/{quote(bucket, safe='')}/{quote(key, safe='/~')}"
