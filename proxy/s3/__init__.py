"""The S3 API on the proxy's port, mapped onto the Swift API's controllers (docs/design/s3.md)."""
