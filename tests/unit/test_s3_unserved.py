"""proxy/s3/unserved.py: headers asking for what is not served are refused with AWS's code."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from proxy.s3.errors import S3Error
from proxy.s3.unserved import refuse_unserved


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("x-amz-server-side-encryption", "AES256", "NotImplemented"),
        ("X-Amz-Server-Side-Encryption", "aws:kms", "NotImplemented"),
        ("x-amz-server-side-encryption", "rot13", "InvalidArgument"),
        ("x-amz-server-side-encryption-customer-algorithm", "AES256", "NotImplemented"),
        ("x-amz-tagging", "a=b", "NotImplemented"),
        ("x-amz-website-redirect-location", "/x", "NotImplemented"),
        ("x-amz-mfa", "serial 123456", "NotImplemented"),
        ("x-amz-acl", "public-read", "NotImplemented"),
        ("x-amz-grant-read", 'id="x"', "NotImplemented"),
        ("x-amz-object-lock-mode", "GOVERNANCE", "InvalidRequest"),
        ("x-amz-storage-class", "GLACIER", "InvalidStorageClass"),
    ],
)
def test_refused(name: str, value: str, code: str) -> None:
    with pytest.raises(S3Error) as exc:
        refuse_unserved(CIMultiDict({name: value, "Content-Type": "text/plain"}))
    assert exc.value.code == code


def test_what_is_served_passes() -> None:
    refuse_unserved(
        CIMultiDict(
            {
                "x-amz-acl": "private",
                "x-amz-storage-class": "STANDARD",
                "x-amz-expected-bucket-owner": "123",
                "x-amz-meta-tagging": "not a tag",
                "x-amz-checksum-crc32": "AAAAAA==",
            }
        )
    )
