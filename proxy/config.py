"""The ``[proxy]`` table: the proxy server's settings (defaults here, nowhere else).

::

    [proxy]
    bind_ip = "0.0.0.0"
    bind_port = 8080
    workers = 2
    node_timeout_s = 10

Timeouts follow Swift's proxy: ``conn_timeout_s`` bounds a connect to a backend,
``node_timeout_s`` each wait on one (an answer, a 100 Continue, room for the next chunk of a
PUT body, the next chunk of a GET body), ``client_timeout_s`` each wait for the next chunk of
a client's PUT body.  ``post_quorum_timeout_s`` is how long a write that already has its quorum
waits for the other replicas' answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.config import ServerConfig


@dataclass(frozen=True)
class ProxyConfig(ServerConfig):
    bind_port: int = 8080
    conn_timeout_s: float = 0.5
    node_timeout_s: float = 10.0
    client_timeout_s: float = 60.0
    post_quorum_timeout_s: float = 0.5
    allow_account_autocreate: bool = True
    # A node with more than this many errors within the interval is skipped until it passes.
    error_suppression_limit: int = 10
    error_suppression_interval_s: float = 60.0
    object_chunk_size: int = 65536  # bodies up to it are read whole and sent in one write
    stream_chunk_size: int = 1 << 20  # bytes read and sent at a time of a larger body
    put_queue_chunks: int = 2  # chunks buffered per replica of a streamed PUT (backpressure)
    info_cache_ttl_s: float = 5.0
    max_backend_connections: int = 512  # per worker, over all backends (the pool's bound)
    ring_check_interval_s: float = 15.0  # how often the ring files' mtimes are looked at
    # S3 virtual-host-style requests: a Host of ``<bucket>.<domain>`` names the bucket, for
    # each domain of this comma-separated list (Swift s3api's ``storage_domain``).
    s3_domains: str = "localhost"
    s3_region: str = "us-east-1"  # what GetBucketLocation says, and SigV4 scopes may name
    s3_min_part_bytes: int = 5 << 20  # every multipart upload's part but the last (S3's 5 MiB)

    def __post_init__(self) -> None:
        super().__post_init__()
        timeouts = (
            self.conn_timeout_s,
            self.node_timeout_s,
            self.client_timeout_s,
            self.post_quorum_timeout_s,
            self.error_suppression_interval_s,
            self.ring_check_interval_s,
        )
        if any(t <= 0 for t in timeouts):
            raise ValueError("timeouts and intervals must be > 0")
        if self.error_suppression_limit < 0:
            raise ValueError("error_suppression_limit must be >= 0")
        if min(self.object_chunk_size, self.stream_chunk_size, self.put_queue_chunks) < 1:
            raise ValueError("object_chunk_size, stream_chunk_size, put_queue_chunks must be >= 1")
        if self.info_cache_ttl_s < 0:
            raise ValueError("info_cache_ttl_s must be >= 0")
        if self.max_backend_connections < 1:
            raise ValueError("max_backend_connections must be >= 1")
