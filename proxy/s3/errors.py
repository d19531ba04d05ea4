"""S3's error answers: a code, an HTTP status and an XML body.

Every S3 failure is raised as ``S3Error(code, message)``; the S3 front end turns it into the
XML body S3 clients parse (``Code``, ``Message``, ``Resource``, ``RequestId``) with the status
the code implies.  The table holds the codes Torus answers and the status AWS documents for
each, so that callers name a code and never pick a status by hand.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

# code -> (HTTP status, AWS's default message)
CODES: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied."),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential parameter."),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "ConditionalRequestConflict": (409, "A conflicting operation occurred. Retry the request."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed object size."),
    "EntityTooSmall": (
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
    ),
    "ExpiredToken": (400, "The provided token has expired."),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    "IncorrectNumberOfFilesInPostRequest": (
        400,
        "POST requires exactly one file upload per request.",
    ),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "InvalidArgument": (400, "Invalid Argument."),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidChunkSizeError": (
        400,
        "Only the last chunk is allowed to have a size less than 8192 bytes",
    ),
    "InvalidDigest": (400, "The Content-MD5 or checksum you specified is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found."),
    "InvalidLocationConstraint": (400, "The specified location-constraint is not valid."),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "InvalidPolicyDocument": (
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
    ),
    "InvalidRange": (416, "The requested range is not satisfiable."),
    "InvalidRequest": (400, "Invalid Request."),
    "InvalidStorageClass": (400, "The storage class you specified is not valid."),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long."),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MalformedPOSTRequest": (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "MalformedTrailerError": (
        400,
        "The request contained trailing data that was not well-formed or did not conform to "
        "our published schema.",
    ),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published "
        "schema.",
    ),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingSecurityHeader": (400, "Your request was missing a required header."),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified multipart upload does not exist."),
    "NotImplemented": (
        501,
        "A header or query you provided implies functionality that is not implemented.",
    ),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not hold."),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the current time is too large.",
    ),
    "RequestTimeout": (
        400,
        "Your socket connection to the server was not read from or written to within the "
        "timeout period.",
    ),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
}


class S3Error(Exception):
    """An S3 error answer.  ``extra``: more elements for the XML body (AWS adds e.g.
    ``BucketName``, ``Key``, ``RequestTime``/``ServerTime`` to some codes), in order."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        extra: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        status, default = CODES[code]  # an unknown code is a bug: KeyError at the raise site
        super().__init__(f"{code}: {message or default}")
        self.code = code
        self.status = status
        self.message = message or default
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def xml(self, resource: str, request_id: str) -> bytes:
        """The body: ``<Error>`` with Code, Message, the extra elements, Resource, RequestId."""
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
            f"<Code>{self.code}</Code>",
            f"<Message>{escape(self.message)}</Message>",
        ]
        parts += [f"<{name}>{escape(value)}</{name}>" for name, value in self.extra.items()]
        parts += [
            f"<Resource>{escape(resource)}</Resource>",
            f"<RequestId>{request_id}</RequestId>",
        ]
        parts.append("</Error>")
        return "".join(parts).encode()
