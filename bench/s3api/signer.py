"""SigV4 header signing for the S3 load generator: botocore's result at a fraction of its cost.

The measured loop signs every request itself, as a client must, but it cannot afford botocore's
signer (an AWSRequest, header dicts, url parsing: ~160 µs of CPU a request on the bench box)
on a 2-core box whose other core serves the requests; this one takes ~17 µs with the head.
What does not change between requests is computed once:

- the signing key (four HMACs) per date, so a day's requests pay one HMAC for the signature;
- the credential scope and the ``X-Amz-Date`` text, the latter once per second;
- the payload's SHA-256 and CRC32 per body (every PUT of a run sends the same bytes).

A request then costs one SHA-256 of its canonical request and one HMAC.  The canonicalisation
is S3's (botocore's ``S3SigV4Auth``): the path signed exactly as sent (already percent-encoded,
not encoded again, not normalised), header values trimmed, names lower-cased and sorted.
test_signer.py (beside this file) checks that boto3 itself sends the same Authorization for
the same request.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def signing_key(secret_key: str, date: str, region: str, service: str = "s3") -> bytes:
    """kSigning of the SigV4 spec: HMAC chain over date (YYYYMMDD), region, service."""
    key = hmac.digest(("AWS4" + secret_key).encode(), date.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


class Signer:
    """Signs requests of one access key in one region; keys cached per date."""

    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1") -> None:
        self.access_key = access_key
        self._secret_key = secret_key
        self.region = region
        self._date = ""
        self._key = b""
        self._scope = ""
        self._second = -1
        self._amz_date = ""

    def amz_date(self, now_s: float | None = None) -> str:
        """``X-Amz-Date`` for now (or ``now_s``), formatted once per second."""
        second = int(time.time() if now_s is None else now_s)
        if second != self._second:
            self._second = second
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        return self._amz_date

    def _key_for(self, date: str) -> tuple[bytes, str]:
        if date != self._date:  # once a day (or once a run)
            self._key = signing_key(self._secret_key, date, self.region)
            self._scope = f"{date}/{self.region}/s3/aws4_request"
            self._date = date
        return self._key, self._scope

    def authorization(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        payload_sha256: str,
        amz_date: str,
        query: str = "",
    ) -> str:
        """The Authorization header's value.

        ``path``: the request target's path exactly as sent (percent-encoded).  ``query``: the
        canonical query string (sorted, encoded), "" for none.  ``headers``: every header to
        sign, lower-case names, including ``host``, ``x-amz-date`` and
        ``x-amz-content-sha256``; all of them are signed, as botocore signs all it sends bar
        a few (User-Agent, Expect, amz-sdk-*).
        """
        names = sorted(headers)
        canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
        signed = ";".join(names)
        canonical = f"{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload_sha256}"
        key, scope = self._key_for(amz_date[:8])
        string_to_sign = (
            f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(key, string_to_sign.encode(), "sha256").hexdigest()
        return (
            f"{ALGORITHM} Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
