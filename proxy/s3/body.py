"""An S3 request body as the Swift controllers should see it: decoded, hashed, checked.

Installed per request (``install``) as the proxy's body filter (proxy/streaming.py's
``BODY_FILTER``), so the object controller streams the decoded body to the replicas as it
streams any other, and a failed check raises before the last byte is handed on: the PUT is cut
on every replica and nothing is stored.

- ``x-amz-content-sha256`` with a hex digest: the body's SHA-256 must be it
  (XAmzContentSHA256Mismatch).  ``UNSIGNED-PAYLOAD``: nothing to check.
- The STREAMING-* values: the aws-chunked framing is decoded and each chunk's signature
  checked (proxy/s3/aws_chunked.py); the Swift PUT's Content-Length is
  ``x-amz-decoded-content-length``.
- A checksum the request names (``x-amz-checksum-*`` header or trailer) is computed as the
  body passes and compared at its end (BadDigest); proxy/s3/checksums.py.
"""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web

from ..streaming import BODY_FILTER, LATE_SYSMETA, LateSysmeta, PieceSource
from . import checksums, sigv2
from .aws_chunked import AwsChunkedDecoder, declared_trailers
from .context import S3, S3Context
from .errors import S3Error
from .sigv4 import (
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    SignedRequest,
)
from .swift import CHECKSUM_SYSMETA

STREAMING = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)


def install(request: web.Request, signed: SignedRequest | None, signing_key: bytes | None) -> None:
    """Set the request's body filter and ``S3Context.body_length`` / ``.checksum``.
    ``signed`` None: a Signature V2 request (proxy/s3/sigv2.py), which has no aws-chunked
    framing and whose body is hashed only when a signed x-amz-content-sha256 names a digest."""
    ctx = request[S3]
    headers = request.headers
    if signed is None:
        v2_sha256 = sigv2.payload_sha256(headers)
        payload = UNSIGNED_PAYLOAD if v2_sha256 is None else v2_sha256
        streaming = False
    else:
        payload = signed.payload
        streaming = payload in STREAMING
    if request.method == "POST" and "uploadId" in request.query:
        # CompleteMultipartUpload: an x-amz-checksum-* header is the whole object's, checked
        # against the parts' (proxy/s3/multipart_checksums.py), not the XML body's.
        ctx.checksum = None
    else:
        ctx.checksum = checksums.requested_checksum(headers)
    if streaming:
        decoded = headers.get("x-amz-decoded-content-length")
        if decoded is None or not decoded.isdigit():
            raise S3Error("MissingContentLength", "x-amz-decoded-content-length is required.")
        ctx.body_length = int(decoded)
    else:
        ctx.body_length = request.content_length
    if request.method not in ("PUT", "POST"):
        return
    sha256 = None if streaming or payload == UNSIGNED_PAYLOAD else payload.lower()
    requested = ctx.checksum
    if (
        requested is not None
        and requested.from_trailer
        and request.method == "PUT"
        and "x-amz-copy-source" not in headers
    ):
        request[LATE_SYSMETA] = late_checksum(ctx, requested.algorithm)

    def body_filter(raw: PieceSource) -> PieceSource:
        source = raw
        decoder = None
        if streaming:
            assert signed is not None and signing_key is not None
            decoder = AwsChunkedDecoder(
                raw,
                payload=payload,
                decoded_length=ctx.body_length,
                trailer_names=declared_trailers(headers.get("x-amz-trailer")),
                signing_key=signing_key,
                seed_signature=signed.signature,
                amz_date=signed.amz_date,
                scope=signed.scope,
            )
            source = decoder.read_piece
        tap = None
        if requested is not None:
            tap = checksums.ChecksumTap(source, (requested.algorithm,))
            source = tap.next_piece
        digest = hashlib.sha256() if sha256 is not None else None

        async def next_piece() -> bytes:
            piece = await source()
            if piece:
                if digest is not None:
                    digest.update(piece)
                return piece
            if digest is not None and digest.hexdigest() != sha256:
                raise S3Error("XAmzContentSHA256Mismatch", extra=_sha_extra(sha256, digest))
            if tap is not None and requested is not None:
                trailer = None
                if decoder is not None:
                    trailer = decoder.trailers.get(checksums.header_name(requested.algorithm))
                tap.verify(requested, trailer)
                ctx.checksum_value = tap.b64(requested.algorithm)
            return piece

        return next_piece

    request[BODY_FILTER] = body_filter


def late_checksum(ctx: S3Context, algorithm: str) -> LateSysmeta:
    """A trailer's checksum, stored as the object's sysmeta (as a header's is) in the checksum
    footer (proxy/streaming.py ``LATE_SYSMETA``): its base64 has a fixed length for each
    algorithm, so the object servers know before the body how much of its end to hold back."""
    name = CHECKSUM_SYSMETA + algorithm.lower()
    length = len(base64.b64encode(bytes(checksums.DIGEST_BYTES[algorithm])))

    def values() -> dict[str, str]:
        if ctx.checksum_value is None:  # the body filter sets it once the trailer matched
            raise RuntimeError(f"{name}: the body ended without its checksum verified")
        return {name: ctx.checksum_value}

    return LateSysmeta(names_and_lengths=((name, length),), values=values)


async def read_whole(request: web.Request, limit: int) -> bytes:
    """A small request body (a CreateBucket or DeleteObjects XML document), through the
    request's body filter, its Content-MD5 checked; EntityTooLarge past ``limit`` bytes."""
    content = request.content

    async def raw() -> bytes:
        return await content.readany()

    body_filter = request.get(BODY_FILTER)
    next_piece = raw if body_filter is None else body_filter(raw)
    pieces, size = [], 0
    while piece := await next_piece():
        size += len(piece)
        if size > limit:
            raise S3Error("EntityTooLarge")
        pieces.append(piece)
    body = b"".join(pieces)
    md5_hex = checksums.content_md5_hex(request.headers.get("Content-MD5"))
    if md5_hex is not None and hashlib.md5(body).hexdigest() != md5_hex:
        raise checksums.content_md5_mismatch(request.headers["Content-MD5"])
    return body


def _sha_extra(expected: str, digest: hashlib._Hash) -> dict[str, str]:
    return {"ClientComputedContentSHA256": expected, "S3ComputedContentSHA256": digest.hexdigest()}
