"""A PostObject's policy document: what a browser form may upload, signed by the key's owner.

The policy (AWS "Creating a POST policy") is base64 of a JSON object: ``expiration`` (an ISO
8601 UTC time) and ``conditions``, each one of

- ``{"field": "value"}``: the field is exactly ``value``;
- ``["eq", "$field", "value"]``: the same;
- ``["starts-with", "$field", "prefix"]``: the field starts with ``prefix`` ("" for any value;
  for Content-Type, each of a comma-separated list of types must);
- ``["content-length-range", min, max]``: the file is ``min`` to ``max`` bytes, inclusive.

The form is valid when the policy has not expired, every condition holds (a field the form
lacks is ""; ``bucket`` is the request's bucket), and every field of the form is named by a
condition, except the signature's own (``x-amz-signature``, ``signature``,
``awsaccesskeyid``), ``policy``, ``file`` and ``x-ignore-*``.  Field names are
case-insensitive; values are not.  A failure is S3's 403 AccessDenied
"Invalid according to Policy: ...".

The signatures a form carries (``v4_signature``, ``v2_signature``) are computed here too.
Pure: no HTTP, the clock passed in.  The file's size is checked as it streams
(``LengthRange``), since a form's file has no length of its own.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from . import sigv4
from .errors import S3Error

INVALID_POLICY = "InvalidPolicyDocument"  # a policy that does not decode (AWS's code)
EXEMPT_FIELDS = frozenset({"x-amz-signature", "signature", "awsaccesskeyid", "policy", "file"})
EXEMPT_PREFIX = "x-ignore-"
OPERATORS = ("eq", "starts-with")


@dataclass(frozen=True)
class Condition:
    operator: str  # "eq" or "starts-with"
    field: str  # lowercase, without the "$"
    value: str
    text: str  # as the policy wrote it, for the error message


@dataclass(frozen=True)
class LengthRange:
    """``content-length-range``: checked on every piece (too large as soon as it is) and at
    the end (too small only then)."""

    min_bytes: int
    max_bytes: int

    def check_so_far(self, size_bytes: int) -> None:
        if size_bytes > self.max_bytes:
            raise S3Error(
                "EntityTooLarge",
                extra={"ProposedSize": str(size_bytes), "MaxSizeAllowed": str(self.max_bytes)},
            )

    def check_end(self, size_bytes: int) -> None:
        self.check_so_far(size_bytes)
        if size_bytes < self.min_bytes:
            raise S3Error(
                "EntityTooSmall",
                extra={"ProposedSize": str(size_bytes), "MinSizeAllowed": str(self.min_bytes)},
            )


@dataclass(frozen=True)
class Policy:
    expiration_s: float  # epoch seconds
    conditions: tuple[Condition, ...]
    length_range: LengthRange | None


def decode(policy_b64: str) -> Policy:
    """The policy a form's ``policy`` field holds; INVALID_POLICY if it is not one."""
    try:
        document = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise _invalid("Invalid JSON.")
    if "expiration" not in document:
        raise _invalid("Policy missing expiration.")
    expiration_s = _expiration(document["expiration"])
    raw = document.get("conditions")
    if not isinstance(raw, list):
        raise _invalid("Policy missing conditions.")
    conditions: list[Condition] = []
    length_range = None
    for item in raw:
        if isinstance(item, dict):
            conditions += [_simple(name, value) for name, value in item.items()]
        elif isinstance(item, list) and item and str(item[0]).lower() == "content-length-range":
            length_range = _length_range(item)
        elif isinstance(item, list):
            conditions.append(_condition(item))
        else:
            raise _invalid(f"Invalid Condition: {json.dumps(item)}")
    return Policy(expiration_s, tuple(conditions), length_range)


def check(policy: Policy, fields: Mapping[str, str], bucket: str, now_s: float) -> None:
    """The form's ``fields`` (lowercase names, the key's ``${filename}`` already substituted)
    against ``policy`` at ``now_s``; AccessDenied at the first failure."""
    if now_s > policy.expiration_s:
        raise _denied("Policy expired.")
    values = {**fields, "bucket": bucket}
    for condition in policy.conditions:
        if not _holds(condition, values.get(condition.field, "")):
            raise _denied(f"Policy Condition failed: {condition.text}")
    named = {condition.field for condition in policy.conditions}
    extra = [
        name
        for name in fields
        if name not in named and name not in EXEMPT_FIELDS and not name.startswith(EXEMPT_PREFIX)
    ]
    if extra:
        raise _denied("Extra input fields: " + ", ".join(extra))


def v4_signature(secret: str, date: str, region: str, policy_b64: str) -> str:
    """A V4 form's ``x-amz-signature``: hex HMAC-SHA256 of the base64 policy, as sent, with
    the signing key of the credential's scope (the policy is the whole string to sign)."""
    key = sigv4.signing_key(secret, date, region, "s3")
    return hmac.digest(key, policy_b64.encode(), "sha256").hex()


def v2_signature(secret: str, policy_b64: str) -> str:
    """A V2 form's ``signature``: base64 HMAC-SHA1 of the base64 policy."""
    digest = hmac.digest(secret.encode(), policy_b64.encode(), "sha1")
    return base64.b64encode(digest).decode()


def _holds(condition: Condition, value: str) -> bool:
    if condition.operator == "eq":
        return value == condition.value
    if condition.field == "content-type":
        return all(t.strip().startswith(condition.value) for t in value.split(","))
    return value.startswith(condition.value)


def _expiration(value: object) -> float:
    """``2026-11-30T12:00:00Z`` or with milliseconds (``.000Z``): UTC, as AWS requires."""
    if not isinstance(value, str) or not value.endswith("Z"):
        raise _invalid(f"Invalid 'expiration' value: '{value}'")
    try:
        moment = datetime.datetime.fromisoformat(value[:-1])
    except ValueError:
        raise _invalid(f"Invalid 'expiration' value: '{value}'") from None
    if moment.tzinfo is not None:
        raise _invalid(f"Invalid 'expiration' value: '{value}'")
    return moment.replace(tzinfo=datetime.UTC).timestamp()


def _simple(name: str, value: object) -> Condition:
    if not isinstance(value, str):
        raise _invalid(f"Invalid Simple-Condition: value must be a string: {json.dumps(value)}")
    field = name.lstrip("$")
    # AWS words a failed {"key": "value"} as its equivalent ["eq", "$key", "value"].
    return Condition("eq", field.lower(), value, json.dumps(["eq", "$" + field, value]))


def _condition(item: list[object]) -> Condition:
    text = json.dumps(item)
    if len(item) != 3 or not all(isinstance(part, str) for part in item):
        raise _invalid(f"Invalid Condition: {text}")
    operator, field, value = (str(part) for part in item)
    operator = operator.lower()
    if operator not in OPERATORS:
        raise _invalid(f"Invalid Condition: unknown operation {json.dumps(item[0])}")
    if not field.startswith("$"):
        raise _invalid(f"Invalid Condition: field name must start with '$': {text}")
    return Condition(operator, field[1:].lower(), value, text)


def _length_range(item: list[object]) -> LengthRange:
    text = json.dumps(item)
    if len(item) != 3:
        raise _invalid(f"Invalid content-length-range: {text}")
    bounds = []
    for bound in item[1:]:
        if isinstance(bound, str) and bound.isdigit():
            bound = int(bound)
        if not isinstance(bound, int) or isinstance(bound, bool) or bound < 0:
            raise _invalid(f"Invalid content-length-range: {text}")
        bounds.append(bound)
    if bounds[0] > bounds[1]:
        raise _invalid(f"Invalid content-length-range: {text}")
    return LengthRange(bounds[0], bounds[1])


def _invalid(reason: str) -> S3Error:
    return S3Error(INVALID_POLICY, f"Invalid Policy: {reason}")


def _denied(reason: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {reason}")
