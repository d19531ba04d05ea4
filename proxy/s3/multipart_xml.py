"""The XML documents of S3 multipart uploads: the Complete request read, the answers written."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree

from .checksums import ALGORITHMS
from .errors import S3Error
from .listing_xml import NAMESPACE, Owner, s3_time, xml_text

MAX_PART_NUMBER = 10_000
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


# A part's <ChecksumCRC32>... element of CompleteMultipartUpload -> the algorithm.
_CHECKSUM_ELEMENTS = {"Checksum" + algorithm: algorithm for algorithm in ALGORITHMS}


@dataclass(frozen=True, slots=True)
class RequestedPart:
    number: int
    etag: str  # unquoted
    checksums: tuple[tuple[str, str], ...] = ()  # (algorithm, base64 value) as listed


def parse_complete(body: bytes) -> list[RequestedPart]:
    """CompleteMultipartUpload's part list, in the order given: MalformedXML if it is not one,
    InvalidPartOrder unless the numbers ascend."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise S3Error("MalformedXML") from None
    parts = []
    for element in root:
        if _tag(element) != "Part":
            continue
        number, etag, listed = None, None, []
        for child in element:
            tag = _tag(child)
            if tag == "PartNumber":
                number = (child.text or "").strip()
            elif tag == "ETag":
                etag = (child.text or "").strip().strip('"')
            elif tag in _CHECKSUM_ELEMENTS:
                listed.append((_CHECKSUM_ELEMENTS[tag], (child.text or "").strip()))
        if number is None or etag is None or not number.isdigit():
            raise S3Error("MalformedXML")
        parts.append(RequestedPart(int(number), etag, tuple(listed)))
    if not parts:
        raise S3Error("MalformedXML")
    numbers = [p.number for p in parts]
    if any(b <= a for a, b in itertools.pairwise(numbers)):
        raise S3Error("InvalidPartOrder")
    return parts


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def initiate_result(bucket: str, key: str, upload_id: str) -> bytes:
    return (
        f'{HEAD}<InitiateMultipartUploadResult xmlns="{NAMESPACE}">'
        f"<Bucket>{xml_text(bucket)}</Bucket><Key>{xml_text(key)}</Key>"
        f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
    ).encode()


def complete_result(
    location: str,
    bucket: str,
    key: str,
    etag: str,
    checksum: tuple[str, str, str] | None = None,
) -> bytes:
    """``checksum``: the object's (algorithm, base64 value, COMPOSITE or FULL_OBJECT)."""
    return (
        f'{HEAD}<CompleteMultipartUploadResult xmlns="{NAMESPACE}">'
        f"<Location>{xml_text(location)}</Location><Bucket>{xml_text(bucket)}</Bucket>"
        f"<Key>{xml_text(key)}</Key><ETag>&quot;{etag}&quot;</ETag>"
        f"{_object_checksum(checksum)}</CompleteMultipartUploadResult>"
    ).encode()


def _object_checksum(checksum: tuple[str, str, str] | None) -> str:
    if checksum is None:
        return ""
    algorithm, value, kind = checksum
    return f"<Checksum{algorithm}>{value}</Checksum{algorithm}><ChecksumType>{kind}</ChecksumType>"


def copy_part_result(etag: str, last_modified: str) -> bytes:
    return (
        f'{HEAD}<CopyPartResult xmlns="{NAMESPACE}"><LastModified>{last_modified}</LastModified>'
        f"<ETag>&quot;{etag}&quot;</ETag></CopyPartResult>"
    ).encode()


@dataclass(frozen=True, slots=True)
class Part:
    number: int
    etag: str
    size_bytes: int
    last_modified: str  # the Swift listing's
    checksum: tuple[str, str] | None = None  # (algorithm, base64 value)


def list_parts_result(
    bucket: str,
    key: str,
    upload_id: str,
    owner: Owner,
    marker: int,
    max_parts: int,
    parts: Sequence[Part],
    truncated: bool,
    upload_checksum: tuple[str, str] | None = None,
) -> bytes:
    """``upload_checksum``: the upload's (algorithm, COMPOSITE or FULL_OBJECT), if it has one."""
    who = f"<ID>{xml_text(owner.id)}</ID><DisplayName>{xml_text(owner.display_name)}</DisplayName>"
    out = [
        f'{HEAD}<ListPartsResult xmlns="{NAMESPACE}">',
        f"<Bucket>{xml_text(bucket)}</Bucket><Key>{xml_text(key)}</Key>",
        f"<UploadId>{upload_id}</UploadId>",
        f"<Initiator>{who}</Initiator><Owner>{who}</Owner><StorageClass>STANDARD</StorageClass>",
        f"<PartNumberMarker>{marker}</PartNumberMarker>",
    ]
    if parts:
        out.append(f"<NextPartNumberMarker>{parts[-1].number}</NextPartNumberMarker>")
    out.append(f"<MaxParts>{max_parts}</MaxParts>")
    out.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    out += [
        f"<Part><PartNumber>{p.number}</PartNumber>"
        f"<LastModified>{s3_time(p.last_modified)}</LastModified>"
        f"<ETag>&quot;{p.etag}&quot;</ETag><Size>{p.size_bytes}</Size>"
        f"{_part_checksum(p.checksum)}</Part>"
        for p in parts
    ]
    if upload_checksum is not None:
        algorithm, kind = upload_checksum
        out.append(
            f"<ChecksumAlgorithm>{algorithm}</ChecksumAlgorithm><ChecksumType>{kind}</ChecksumType>"
        )
    out.append("</ListPartsResult>")
    return "".join(out).encode()


def _part_checksum(checksum: tuple[str, str] | None) -> str:
    if checksum is None:
        return ""
    algorithm, value = checksum
    return f"<Checksum{algorithm}>{value}</Checksum{algorithm}>"
