"""What an S3 request carries through the Swift controllers it is served by."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from identity.ec2 import Ec2Credentials

from ..context import IDENTITY
from .checksums import RequestedChecksum
from .listing_xml import Owner


@dataclass
class S3Context:
    """One S3 request: set by proxy/s3/frontend.py, shared (the request state's copy is
    shallow) by every cloned Swift request made for it, read back by the answer's headers."""

    request_id: str
    bucket: str | None
    key: str | None
    resource: str  # "/bucket/key", for error bodies
    account: str = ""  # the storage account ("AUTH_test") once authenticated
    checksum_mode: bool = False  # x-amz-checksum-mode: ENABLED on a GET/HEAD
    body_length: int | None = None  # the decoded body's (x-amz-decoded-content-length)
    checksum: RequestedChecksum | None = None  # the checksum a write names
    checksum_value: str | None = None  # its base64 value, once the body was checked
    extra_headers: dict[str, str] = field(default_factory=dict)  # added to the answer


S3 = web.RequestKey("torus.s3", S3Context)


def owner_of(request: web.Request) -> Owner:
    """The Owner S3 answers show: the signer, ``account:user`` (as Swift's s3api)."""
    identity = request[IDENTITY]
    assert identity is not None
    name = f"{identity.account}:{identity.user}"
    return Owner(name, name)


S3_CREDENTIALS = web.AppKey("torus.s3_credentials", Ec2Credentials)
