"""Before any load: boto3 itself makes a bucket, PUTs and GETs one object on each system.

A system that refuses boto3 (a wrong key, a region it does not serve, an S3 layer missing from
its pipeline) then stops the benchmark with the S3 error boto3 got, instead of a measured run
of nothing but 403s.  boto3 here runs with its defaults (checksums when supported, path-style
because the endpoint is an IP), so the requests are those the load generator imitates.
"""

from __future__ import annotations

import os

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

BUCKET = "s3bench-check"
KEY = "boto3-check"


class ValidationError(Exception):
    """boto3 could not do a basic PUT/GET on a system; the message says which step and why."""


def check(endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1") -> str:
    """Create ``BUCKET`` (or find it ours), PUT 4 KiB, GET it back; a line saying what worked."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(retries={"max_attempts": 1}),
    )
    data = os.urandom(4096)
    step = "CreateBucket"
    try:
        try:
            s3.create_bucket(Bucket=BUCKET)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",):
                raise
        step = "PutObject"
        put = s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
        step = "GetObject"
        got = s3.get_object(Bucket=BUCKET, Key=KEY)
        body = got["Body"].read()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise ValidationError(
            f"{endpoint}: boto3 {step} failed: {status} {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise ValidationError(f"{endpoint}: boto3 {step} failed: {exc}") from None
    if body != data:
        raise ValidationError(f"{endpoint}: GET gave {len(body)} other bytes than the PUT's 4096")
    checksum = got.get("ChecksumCRC32")
    return (
        f"{endpoint}: boto3 PUT/GET of 4 KiB ok (ETag {put.get('ETag')}, "
        f"CRC32 {'returned' if checksum else 'not returned'} on GET)"
    )
