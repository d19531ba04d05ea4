"""Request headers that ask for what Torus does not do, refused before anything is read or
written, so that no client takes a success for a feature it did not get: encryption at rest,
tags, object lock, website redirects, MFA delete, ACLs other than private, storage classes
other than STANDARD.  (Swift's s3api refuses the same, bar the ACLs, which it can map onto
Swift's.)  Headers that only describe the request (``x-amz-expected-bucket-owner``,
``x-amz-request-payer``) are not refused."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import S3Error

# A header's name (lower case) -> what it asks for, when any value asks for it.
_NOT_SERVED = {
    "x-amz-server-side-encryption-customer-algorithm": "Server-side encryption",
    "x-amz-server-side-encryption-aws-kms-key-id": "Server-side encryption",
    "x-amz-tagging": "Object tagging",
    "x-amz-website-redirect-location": "Website redirection",
    "x-amz-mfa": "MFA delete",
}
_ENCRYPTIONS = ("AES256", "aws:kms", "aws:kms:dsse")
_OBJECT_LOCK_PREFIX = "x-amz-object-lock-"
_GRANT_PREFIX = "x-amz-grant-"


def refuse_unserved(headers: Mapping[str, str]) -> None:
    """S3Error for the first header asking for something not served: 501 NotImplemented, or
    the error AWS gives where it has one of its own (a bad value; object lock on a bucket
    without it; an unknown storage class)."""
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith("x-amz-"):
            continue
        feature = _NOT_SERVED.get(lower)
        if feature is not None:
            raise S3Error("NotImplemented", f"{feature} is not implemented.")
        if lower == "x-amz-server-side-encryption":
            if value not in _ENCRYPTIONS:
                raise S3Error(
                    "InvalidArgument",
                    "The encryption method specified is not supported",
                    extra={"ArgumentName": name, "ArgumentValue": value},
                )
            raise S3Error("NotImplemented", "Server-side encryption is not implemented.")
        if lower.startswith(_OBJECT_LOCK_PREFIX):
            raise S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")
        if lower.startswith(_GRANT_PREFIX) or (lower == "x-amz-acl" and value != "private"):
            raise S3Error("NotImplemented", "ACLs other than private are not implemented.")
        if lower == "x-amz-storage-class" and value != "STANDARD":
            raise S3Error("InvalidStorageClass", extra={"StorageClassRequested": value})
