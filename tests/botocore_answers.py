"""A botocore client answered in process: unit tests capture what a real client sends at
its ``before-send`` hook and hand it an answer made here, so that what it parses is real
too, with no network."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from multidict import CIMultiDict

from proxy.s3.errors import S3Error


class RawBody:
    """The raw body botocore reads an answer from (``stream`` and ``read``)."""

    def __init__(self, body: bytes = b"") -> None:
        self._body = body

    def stream(self, *args: object, **kwargs: object) -> Iterator[bytes]:
        yield self._body

    def read(self, *args: object, **kwargs: object) -> bytes:
        return self._body


def canned_response(
    url: str, status: int, headers: Mapping[str, str], body: bytes = b""
) -> AWSResponse:
    """What a ``before-send`` handler returns instead of sending: this answer."""
    return AWSResponse(url, status, dict(headers), RawBody(body))


# One session for every client: the s3 model is then loaded once, not per client.
SESSION = boto3.session.Session(
    aws_access_key_id="test:tester", aws_secret_access_key="testing", region_name="us-east-1"
)


class InProcessS3:
    """A boto3 S3 client (path style, ``client``) whose every request is answered by
    ``answer(bucket, query)``: the XML the proxy's code renders, or the S3Error it raises,
    with no server between."""

    def __init__(self) -> None:
        self.client = SESSION.client(
            "s3", endpoint_url="http://s3.test", config=Config(s3={"addressing_style": "path"})
        )
        self.client.meta.events.register("before-send.s3", self._send)

    def answer(self, bucket: str, query: dict[str, str]) -> bytes:
        raise NotImplementedError

    def _send(self, request: AWSRequest, **_: object) -> AWSResponse:
        url = urlsplit(request.url)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            body = self.answer(unquote(url.path.lstrip("/")), query)
        except S3Error as error:
            return canned_response(request.url, error.status, {}, error.xml(url.path, "tx1"))
        return canned_response(request.url, 200, {"Content-Type": "application/xml"}, body)


def sent_request(request: AWSRequest) -> tuple[CIMultiDict[str], bytes]:
    """The headers (as text) and body of a request botocore is about to send."""
    body = request.body
    if body is not None and not isinstance(body, bytes):
        body = body.read()
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        headers[name] = value.decode() if isinstance(value, bytes) else value
    return headers, body or b""
