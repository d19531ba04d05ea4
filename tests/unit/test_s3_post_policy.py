"""proxy/s3/post_policy.py: policies signed by botocore's own presigned POST, AWS's published
SigV4 POST example, and hand-written conditions from AWS's "Creating a POST policy"."""

from __future__ import annotations

import base64
import json
import time

import boto3
import pytest
from botocore.config import Config

from proxy.s3 import post_policy
from proxy.s3.errors import S3Error

# AWS's example ("Example: Browser-Based Upload using HTTP POST (Using AWS Signature Version
# 4)"): the policy below, with CRLF line ends, base64-encoded, and its signature.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_POLICY_B64 = (
    "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgI"
    "CB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidX"
    "Nlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmV"
    "kaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBs"
    "b2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAge"
    "yJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3"
    "J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQo"
    "NCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0x"
    "L3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNC"
    "iAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9"
)
AWS_SIGNATURE = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
# The form AWS's example posts with that policy (the file aside).
AWS_FORM = {
    "key": "user/user1/photo.jpg",
    "acl": "public-read",
    "success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
    "content-type": "image/jpeg",
    "x-amz-meta-uuid": "14365123651274",
    "x-amz-server-side-encryption": "AES256",
    "x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
    "x-amz-algorithm": "AWS4-HMAC-SHA256",
    "x-amz-date": "20151229T000000Z",
    "x-amz-meta-tag": "",
    "policy": AWS_POLICY_B64,
    "x-amz-signature": AWS_SIGNATURE,
}
FUTURE = "2099-01-01T00:00:00Z"
AWS_NOW = 1451390400.0  # 2015-12-29T12:00:00Z, before the policy's expiration


def encode(document: dict) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def policy(*conditions, expiration: str = "2099-01-01T00:00:00Z") -> post_policy.Policy:
    return post_policy.decode(encode({"expiration": expiration, "conditions": list(conditions)}))


def denied(exc: pytest.ExceptionInfo[S3Error]) -> str:
    assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
    return exc.value.message


def test_aws_example_signature() -> None:
    assert post_policy.v4_signature(AWS_SECRET, "20151229", "us-east-1", AWS_POLICY_B64) == (
        AWS_SIGNATURE
    )


def test_aws_example_form_meets_its_policy() -> None:
    decoded = post_policy.decode(AWS_POLICY_B64)
    assert decoded.expiration_s == 1451476800.0  # 2015-12-30T12:00:00.000Z
    post_policy.check(decoded, AWS_FORM, "sigv4examplebucket", AWS_NOW)


def test_aws_example_refuses_another_bucket_and_prefix() -> None:
    decoded = post_policy.decode(AWS_POLICY_B64)
    with pytest.raises(S3Error) as exc:
        post_policy.check(decoded, AWS_FORM, "otherbucket", AWS_NOW)
    assert denied(exc) == (
        'Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", '
        '"sigv4examplebucket"]'
    )
    with pytest.raises(S3Error) as exc:
        post_policy.check(decoded, {**AWS_FORM, "key": "user/user2/x"}, "sigv4examplebucket", 0)
    assert denied(exc) == (
        'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", '
        '"user/user1/"]'
    )


def test_aws_example_after_expiration() -> None:
    decoded = post_policy.decode(AWS_POLICY_B64)
    with pytest.raises(S3Error) as exc:
        post_policy.check(decoded, AWS_FORM, "sigv4examplebucket", 1451476801.0)
    assert denied(exc) == "Invalid according to Policy: Policy expired."


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_botocore_presigned_post_verifies_and_meets_its_policy(signature_version: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="test:tester",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(signature_version=signature_version),
    )
    presigned = s3.generate_presigned_post(
        "bucket",
        "up/${filename}",
        Fields={"Content-Type": "image/png", "x-amz-meta-a": "1"},
        Conditions=[
            {"Content-Type": "image/png"},
            {"x-amz-meta-a": "1"},
            ["content-length-range", 1, 10],
        ],
        ExpiresIn=60,
    )
    fields = {name.lower(): value for name, value in presigned["fields"].items()}
    if signature_version == "s3v4":
        _, date, region, _, _ = fields["x-amz-credential"].split("/")
        expected = post_policy.v4_signature("testing", date, region, fields["policy"])
        assert fields["x-amz-signature"] == expected
    else:
        assert fields["signature"] == post_policy.v2_signature("testing", fields["policy"])
    decoded = post_policy.decode(fields["policy"])
    assert decoded.length_range == post_policy.LengthRange(1, 10)
    # botocore words a key ending in ${filename} as "starts-with" its prefix; the form's key
    # is checked with the file's name in its place.
    post_policy.check(decoded, {**fields, "key": "up/photo.png"}, "bucket", time.time())
    with pytest.raises(S3Error):
        post_policy.check(decoded, fields, "bucket", time.time() + 120)


def test_field_names_are_case_insensitive_values_are_not() -> None:
    decoded = policy(["eq", "$Content-Type", "text/plain"], {"KEY": "k"})
    post_policy.check(decoded, {"content-type": "text/plain", "key": "k"}, "b", 0)
    with pytest.raises(S3Error):
        post_policy.check(decoded, {"content-type": "TEXT/PLAIN", "key": "k"}, "b", 0)


def test_every_field_needs_a_condition_but_the_exempt_ones() -> None:
    decoded = policy({"key": "k"})
    exempt = {
        "key": "k",
        "policy": "p",
        "x-amz-signature": "s",
        "signature": "s",
        "awsaccesskeyid": "a",
        "file": "",
        "x-ignore-submit": "Upload",
    }
    post_policy.check(decoded, exempt, "b", 0)
    with pytest.raises(S3Error) as exc:
        post_policy.check(decoded, {**exempt, "acl": "private", "x-amz-meta-x": "1"}, "b", 0)
    assert denied(exc) == "Invalid according to Policy: Extra input fields: acl, x-amz-meta-x"


def test_starts_with_empty_allows_any_value_and_a_missing_field() -> None:
    decoded = policy(["starts-with", "$key", ""], ["starts-with", "$x-amz-meta-tag", ""])
    post_policy.check(decoded, {"key": "anything"}, "b", 0)
    post_policy.check(decoded, {"key": "", "x-amz-meta-tag": "t"}, "b", 0)


def test_a_missing_field_is_empty() -> None:
    decoded = policy(["eq", "$acl", "private"])
    with pytest.raises(S3Error):
        post_policy.check(decoded, {}, "b", 0)


def test_content_type_starts_with_applies_to_each_of_a_list() -> None:
    decoded = policy(["starts-with", "$Content-Type", "image/"])
    post_policy.check(decoded, {"content-type": "image/png, image/jpeg"}, "b", 0)
    with pytest.raises(S3Error):
        post_policy.check(decoded, {"content-type": "image/png, text/html"}, "b", 0)


def test_content_length_range() -> None:
    limits = policy(["content-length-range", "2", 5]).length_range
    assert limits == post_policy.LengthRange(2, 5)
    limits.check_so_far(1)  # too small only at the end
    limits.check_end(2)
    limits.check_end(5)
    with pytest.raises(S3Error) as exc:
        limits.check_so_far(6)
    assert exc.value.code == "EntityTooLarge"
    assert exc.value.extra == {"ProposedSize": "6", "MaxSizeAllowed": "5"}
    with pytest.raises(S3Error) as exc:
        limits.check_end(1)
    assert exc.value.code == "EntityTooSmall"
    assert policy({"key": "k"}).length_range is None


def test_expiration_formats() -> None:
    assert policy(expiration="2015-12-30T12:00:00Z").expiration_s == 1451476800.0
    assert policy(expiration="2015-12-30T12:00:00.500Z").expiration_s == 1451476800.5


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("not base64!", "Invalid JSON."),
        (base64.b64encode(b"{not json").decode(), "Invalid JSON."),
        (encode(["a list"]), "Invalid JSON."),
        (encode({"conditions": []}), "Policy missing expiration."),
        (encode({"expiration": "2015-12-30T12:00:00Z"}), "Policy missing conditions."),
        (encode({"expiration": "tomorrow", "conditions": []}), "Invalid 'expiration' value"),
        (encode({"expiration": "2015-12-30T12:00:00", "conditions": []}), "Invalid 'expiration"),
        (encode({"expiration": "2099-01-01T00:00:00Z", "conditions": ["x"]}), "Invalid Condi"),
        (
            encode({"expiration": "2099-01-01T00:00:00Z", "conditions": [["lt", "$key", "a"]]}),
            "Invalid Condition: unknown operation",
        ),
        (
            encode({"expiration": "2099-01-01T00:00:00Z", "conditions": [["eq", "key", "a"]]}),
            "Invalid Condition: field name must start with '$'",
        ),
        (
            encode({"expiration": "2099-01-01T00:00:00Z", "conditions": [{"key": 1}]}),
            "Invalid Simple-Condition",
        ),
        (
            encode({"expiration": FUTURE, "conditions": [["content-length-range", 5, 1]]}),
            "Invalid content-length-range",
        ),
        (
            encode({"expiration": FUTURE, "conditions": [["content-length-range", -1]]}),
            "Invalid content-length-range",
        ),
    ],
)
def test_malformed_policies(document: str, reason: str) -> None:
    with pytest.raises(S3Error) as exc:
        post_policy.decode(document)
    assert exc.value.code == post_policy.INVALID_POLICY
    assert exc.value.message.startswith("Invalid Policy: " + reason)
