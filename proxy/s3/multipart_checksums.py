"""The checksum of a multipart upload: what CreateMultipartUpload asks for, what each part
must carry, where a part's checksum is kept, and the completed object's checksum.

- CreateMultipartUpload names an algorithm (``x-amz-checksum-algorithm``) and a type
  (``x-amz-checksum-type``, COMPOSITE or FULL_OBJECT; checksums.multipart_checksum has S3's
  defaults and refusals).  Both are kept as sysmeta of the upload's marker
  (``marker_sysmeta``), read back from the marker's HEAD that every later operation makes
  anyway (``upload_of_marker``): no extra request.
- Every UploadPart of such an upload must carry that algorithm's checksum (``check_part``,
  AWS's "Checksum Type mismatch" otherwise), which body.py verifies as the part streams in.
- A part's checksum is kept twice.  As the part object's sysmeta (object_ops.store_body),
  and, when it came in a header (so it is known before the body: what boto3, the AWS CLI and
  rclone send over http), as a parameter of the part's content type, which the container
  server copies into the part's row of the segments listing, as Swift's SLO keeps
  ``swift_bytes`` there (``part_content_type``, ``part_checksum_of_row``).  Complete and
  ListParts read the upload's rows anyway (for ETags and sizes), so the checksums cost nothing
  more; a part whose checksum came in a trailer (known only after its body, once the content
  type was stored) has no parameter, and costs one HEAD of that part
  (``part_checksum_of_sysmeta``).  The parameter holds the digest in hex: base64's ``/``,
  ``+`` and ``=`` are not token characters, and the container server parses parameters.
- Complete: each part the client lists must name its checksum, equal to the stored one
  (``listed_part_digest``: InvalidRequest when missing, InvalidArgument when malformed,
  InvalidPart when different, as AWS answers); the object's checksum is computed from the part
  digests and sizes (``object_checksum``: COMPOSITE = the algorithm over the concatenated part
  digests, ``-N``; FULL_OBJECT = the part CRCs combined), checked against a whole-object
  checksum the client sends (``check_object_checksum``), and stored as the manifest's checksum
  sysmeta (proxy/s3/swift.py ``CHECKSUM_SYSMETA``), which GET and HEAD return with
  ``x-amz-checksum-mode: ENABLED``.  A composite value always ends in ``-N`` and a full-object
  one never holds a ``-``, so the value alone tells the type.
- A GET or HEAD with ``partNumber`` and checksum mode answers the part's own checksum
  (``part_answer_headers``, from a HEAD of that part): it covers exactly the bytes answered.

An upload created without an algorithm has no object checksum (as at AWS): a checksum one of
its parts carries is verified as the part comes in (body.py) and shown by ListParts, and the
checksums its Complete list names are not checked (a client that did not ask for a checksum
at Create is not refused for listing one).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from . import checksums
from .checksums import (
    COMPOSITE,
    DIGEST_BYTES,
    FULL_OBJECT,
    MULTIPART_TYPES,
    MultipartChecksum,
    RequestedChecksum,
)
from .errors import S3Error
from .swift import CHECKSUM_SYSMETA

UPLOAD_ALGORITHM_SYSMETA = "X-Object-Sysmeta-S3-Upload-Checksum-Algorithm"
UPLOAD_TYPE_SYSMETA = "X-Object-Sysmeta-S3-Upload-Checksum-Type"
PART_CONTENT_TYPE = "application/octet-stream"
PART_PARAMETER = "s3_checksum_"  # + the algorithm in lower case: the part's digest, hex
_PARAMETER = re.compile(r";\s*s3_checksum_([a-z0-9]+)=([0-9a-f]+)\s*(?:;|$)")


class PartChecksum(NamedTuple):
    algorithm: str
    digest: bytes

    def b64(self) -> str:
        return base64.b64encode(self.digest).decode("ascii")


# --- the upload -------------------------------------------------------------------------------


def marker_sysmeta(upload: MultipartChecksum | None) -> dict[str, str]:
    """The marker's sysmeta that remembers the upload's algorithm and type."""
    if upload is None:
        return {}
    return {UPLOAD_ALGORITHM_SYSMETA: upload.algorithm, UPLOAD_TYPE_SYSMETA: upload.type}


def upload_of_marker(headers: Mapping[str, str]) -> MultipartChecksum | None:
    """The algorithm and type of the upload whose marker has ``headers`` (a HEAD's); None for
    an upload created without one (or a marker written before uploads kept them)."""
    algorithm = headers.get(UPLOAD_ALGORITHM_SYSMETA, "").upper()
    kind = headers.get(UPLOAD_TYPE_SYSMETA, "").upper()
    if kind not in MULTIPART_TYPES.get(algorithm, ()):
        return None
    return MultipartChecksum(algorithm, kind)


def answer_headers(upload: MultipartChecksum | None) -> dict[str, str]:
    """CreateMultipartUpload's answer headers: the algorithm and type, as AWS echoes them."""
    if upload is None:
        return {}
    return {"x-amz-checksum-algorithm": upload.algorithm, "x-amz-checksum-type": upload.type}


def check_part(upload: MultipartChecksum | None, requested: RequestedChecksum | None) -> None:
    """An UploadPart of an upload with an algorithm must carry that algorithm's checksum
    (header or trailer); AWS's InvalidRequest otherwise.  Without one, any checksum (or none)."""
    if upload is None:
        return
    given = requested.algorithm.lower() if requested is not None else "null"
    if given != upload.algorithm.lower():
        raise S3Error(
            "InvalidRequest",
            f"Checksum Type mismatch occurred, expected checksum Type: "
            f"{upload.algorithm.lower()}, actual checksum Type: {given}",
        )


# --- where a part's checksum is kept ----------------------------------------------------------


def part_content_type(requested: RequestedChecksum | None) -> str:
    """The content type a part is stored with: its header checksum as a parameter, so that
    the segments listing's row carries it; a trailer's value is not known yet (None)."""
    if requested is None or requested.expected_b64 is None:
        return PART_CONTENT_TYPE
    digest = checksums.decode_digest(requested.algorithm, requested.expected_b64)
    assert digest is not None  # requested_checksum let only well-formed values through
    return f"{PART_CONTENT_TYPE};{PART_PARAMETER}{requested.algorithm.lower()}={digest.hex()}"


def part_checksum_of_row(content_type: str | None) -> PartChecksum | None:
    """The checksum a segments listing row's content type carries, if any."""
    if not content_type or PART_PARAMETER not in content_type:
        return None
    match = _PARAMETER.search(content_type)
    if match is None:
        return None
    algorithm = match[1].upper()
    if DIGEST_BYTES.get(algorithm) != len(match[2]) // 2 or len(match[2]) % 2:
        return None
    return PartChecksum(algorithm, bytes.fromhex(match[2]))


def part_checksum_of_sysmeta(algorithm: str, value: str | None) -> PartChecksum | None:
    """The ``algorithm`` checksum a part object keeps as sysmeta (a trailer's: its HEAD's
    ``X-Object-Sysmeta-S3-Checksum-<algorithm>`` value), if it is a well-formed one."""
    digest = checksums.decode_digest(algorithm, value)
    return None if digest is None else PartChecksum(algorithm, digest)


def part_answer_headers(part_headers: Mapping[str, str]) -> dict[str, str]:
    """A GET or HEAD with ``partNumber`` and checksum mode: the part's own checksum (from its
    object's HEAD, ``part_headers``), which covers exactly the bytes the answer holds."""
    prefix = CHECKSUM_SYSMETA.lower()
    for name, value in part_headers.items():
        lower = name.lower()
        algorithm = lower.removeprefix(prefix).upper()
        if not lower.startswith(prefix) or algorithm not in DIGEST_BYTES:
            continue
        if checksums.decode_digest(algorithm, value) is not None:
            return {checksums.header_name(algorithm): value, "x-amz-checksum-type": FULL_OBJECT}
    return {}


# --- CompleteMultipartUpload ------------------------------------------------------------------


def listed_part_digest(
    upload: MultipartChecksum,
    number: int,
    listed: Sequence[tuple[str, str]],
) -> bytes:
    """The digest the Complete list gives for part ``number`` (``listed``: its
    ``(algorithm, value)`` checksum elements), as AWS checks it: none of the upload's
    algorithm is InvalidRequest; a malformed value, or more than one, InvalidArgument."""
    if len(listed) > 1 or any(
        checksums.decode_digest(algorithm, value) is None for algorithm, value in listed
    ):
        raise S3Error(
            "InvalidArgument",
            "Invalid Base64 or multiple checksums present in request",
            extra={
                "ArgumentName": "Checksum",
                "ArgumentValue": "".join(f"{a}:{v};" for a, v in listed),
            },
        )
    if not listed or listed[0][0] != upload.algorithm:
        raise S3Error(
            "InvalidRequest",
            f"The upload was created using a {upload.algorithm.lower()} checksum. The complete "
            "request must include the checksum for each part. It was missing for part "
            f"{number} in the request.",
        )
    digest = checksums.decode_digest(*listed[0])
    assert digest is not None
    return digest


def object_checksum(upload: MultipartChecksum, parts: Sequence[tuple[bytes, int]]) -> str:
    """The completed object's checksum (base64, ``-N`` for COMPOSITE) from the parts'
    ``(digest, size_bytes)``, in order."""
    if upload.type == FULL_OBJECT:
        return checksums.full_object_b64(upload.algorithm, parts)
    return checksums.composite_b64(upload.algorithm, [digest for digest, _ in parts])


def check_object_checksum(
    upload: MultipartChecksum | None, headers: Mapping[str, str], computed: str | None
) -> None:
    """A whole-object checksum the Complete request sends (``x-amz-checksum-<algorithm>``)
    must be the computed one: for COMPOSITE with or without its ``-N`` (AWS takes both, and a
    wrong N is a mismatch).  ``x-amz-checksum-type``, if sent, must be the upload's."""
    kind = headers.get("x-amz-checksum-type", "").strip().upper()
    if kind and upload is not None and kind != upload.type:
        raise S3Error(
            "InvalidRequest",
            f"The upload was created using the {upload.type} checksum mode. The complete "
            "request must use the same checksum mode.",
        )
    named = [
        (checksums.algorithm_of_header(name), name.lower(), value.strip())
        for name, value in headers.items()
        if name.lower().startswith(checksums.HEADER_PREFIX)
        and name.lower() not in ("x-amz-checksum-type", "x-amz-checksum-algorithm")
    ]
    if not named:
        return
    if len(named) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    algorithm, name, value = named[0]
    if algorithm is None:
        raise S3Error(
            "InvalidRequest",
            "The algorithm type you specified in x-amz-checksum- header is invalid.",
        )
    if upload is None or algorithm != upload.algorithm:
        expected = upload.algorithm.lower() if upload is not None else "null"
        raise S3Error(
            "InvalidRequest",
            f"Checksum Type mismatch occurred, expected checksum Type: {expected}, "
            f"actual checksum Type: {algorithm.lower()}",
        )
    assert computed is not None  # an upload with an algorithm has its checksum computed
    digest_b64, dash, count = value.partition("-")
    invalid = checksums.decode_digest(algorithm, digest_b64) is None or (
        dash and (upload.type != COMPOSITE or not count.isdigit())
    )
    if invalid:
        raise S3Error("InvalidRequest", f"Value for {name} header is invalid.")
    computed_b64, _, computed_count = computed.partition("-")
    if digest_b64 != computed_b64 or (dash and count != computed_count):
        raise S3Error(
            "BadDigest",
            f"The {algorithm.lower()} you specified did not match the calculated checksum.",
        )
