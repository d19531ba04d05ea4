"""Real S3 clients (AWS CLI, s3cmd, rclone, restic) as processes against a test cluster.

Each client is configured the way its documentation says, through its own config file or
environment, and nothing else: the endpoint, the all-in-one's access key ``test:tester`` and
its secret, region us-east-1, path-style where the client has to be told.  No S3 behaviour is
switched off (checksums, signing), so a client that fails is a Torus bug, not a setting.

The environment a client runs in is this one minus every variable that would configure it
behind the test's back (``AWS_*``, ``RCLONE_*``, ``RESTIC_*``, proxies) and with ``HOME`` in
the test's tmp dir, so a developer's ~/.aws, ~/.s3cfg, ~/.config/rclone or restic cache is
never read or written.  (The sandbox this was written in sets ``AWS_CA_BUNDLE``, which
rclone's AWS SDK refuses for its own HTTP transport: "LoadCustomCABundleError".)

A failed command raises with its output and the tail of the proxy's log, which is where the
request Torus refused shows up.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from aio_cluster import AioCluster
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCESS_KEY = "test:tester"
COMMAND_TIMEOUT_S = 240.0
PROXY_LOG_TAIL_LINES = 40
# Variables a client would take its configuration (or a proxy) from.
CLIENT_ENV_PREFIXES = ("AWS_", "RCLONE_", "RESTIC_", "S3CMD", "BOTO_")
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def new_bucket(prefix: str) -> str:
    """A bucket name no other test uses (S3's rules: lower case, 3-63 characters)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def clean_env(home: Path, extra: Mapping[str, str] = ()) -> dict[str, str]:
    """This environment without client configuration or proxies, HOME in ``home``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(CLIENT_ENV_PREFIXES) and key.lower() not in PROXY_VARIABLES
    }
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "NO_PROXY": "127.0.0.1,localhost", **dict(extra)}


def venv_tool(name: str) -> str:
    """A console script of this interpreter's venv (pip's awscli and s3cmd live there)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in this venv (./torus installs it)")
    return str(path)


def system_tool(name: str) -> str:
    """A client from the system's packages (apt's rclone and restic)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (./torus installs it with apt)")
    return path


def proxy_log_tail(cluster: AioCluster, lines: int = PROXY_LOG_TAIL_LINES) -> str:
    return "\n".join(cluster.log("proxy").splitlines()[-lines:])


@dataclass
class Client:
    """One configured client: ``client("s3", "ls")`` runs ``<argv> s3 ls`` in its environment."""

    cluster: AioCluster
    argv: Sequence[str]
    env: dict[str, str]
    cwd: Path | None = None
    log: list[str] = field(default_factory=list)  # every command run, for a failure's message

    def run(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        stdin: bytes | None = None,
        cwd: Path | None = None,
        extra_env: Mapping[str, str] = (),
    ) -> subprocess.CompletedProcess[bytes]:
        """The completed command, output as bytes; raises if it failed and ``check``."""
        command = [*self.argv, *map(os.fspath, args)]
        self.log.append(" ".join(command))
        proc = subprocess.run(
            command,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
            cwd=cwd or self.cwd,
            env={**self.env, **dict(extra_env)},
        )
        if check and proc.returncode != 0:
            raise AssertionError(self.failure(proc))
        return proc

    def __call__(self, *args: str | os.PathLike[str], **kwargs) -> str:
        """Run and return stdout as text (the common case)."""
        return self.run(*args, **kwargs).stdout.decode()

    def failure(self, proc: subprocess.CompletedProcess[bytes]) -> str:
        return (
            f"$ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout.decode(errors='replace')[-4000:]}\n"
            f"--- stderr ---\n{proc.stderr.decode(errors='replace')[-4000:]}\n"
            f"--- proxy log (last {PROXY_LOG_TAIL_LINES} lines) ---\n{proxy_log_tail(self.cluster)}"
        )


# -- the clients, each configured as its documentation says ---------------------------------


def aws_cli(cluster: AioCluster, home: Path) -> Client:
    """AWS CLI v1: keys and region from the environment, the endpoint on the command line.

    ``~/.aws/config`` is left for a test to write (``aws_config``); the CLI finds it in HOME.
    """
    env = clean_env(
        home,
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": cluster.users[ACCESS_KEY],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_MAX_ATTEMPTS": "1",  # a refused request fails the test, not a retry later
        },
    )
    return Client(cluster, [venv_tool("aws"), "--endpoint-url", cluster.endpoint], env)


def aws_config(home: Path, text: str) -> None:
    """Write ``~/.aws/config`` (the CLI's own settings file)."""
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    (home / ".aws" / "config").write_text(text)


def s3cmd(cluster: AioCluster, home: Path) -> Client:
    """s3cmd with a config file: host_base and host_bucket both the endpoint (no
    ``%(bucket)s`` in host_bucket, so path-style), plain HTTP, SigV4 (its default)."""
    host = cluster.endpoint.removeprefix("http://")
    config = home / "s3cfg"
    home.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "[default]\n"
        f"access_key = {ACCESS_KEY}\n"
        f"secret_key = {cluster.users[ACCESS_KEY]}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        f"bucket_location = {REGION}\n"
        "use_https = False\n"
    )
    return Client(cluster, [venv_tool("s3cmd"), "--config", str(config)], clean_env(home))


RCLONE_REMOTE = "torus"


def rclone(cluster: AioCluster, home: Path) -> Client:
    """rclone with remote ``torus:`` defined by environment (RCLONE_CONFIG_TORUS_*):
    provider Other, path-style, and no config file at all."""
    name = f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_"
    env = clean_env(
        home,
        {
            "RCLONE_CONFIG": str(home / "rclone.conf"),  # absent: the environment is the config
            name + "TYPE": "s3",
            name + "PROVIDER": "Other",
            name + "ACCESS_KEY_ID": ACCESS_KEY,
            name + "SECRET_ACCESS_KEY": cluster.users[ACCESS_KEY],
            name + "ENDPOINT": cluster.endpoint,
            name + "REGION": REGION,
            name + "FORCE_PATH_STYLE": "true",
            "RCLONE_RETRIES": "1",
            "RCLONE_LOW_LEVEL_RETRIES": "1",
        },
    )
    return Client(cluster, [system_tool("rclone")], env)


def restic(cluster: AioCluster, home: Path, bucket: str) -> Client:
    """restic with an S3 repository ``s3:<endpoint>/<bucket>``; keys from AWS_* variables,
    its cache under HOME."""
    env = clean_env(
        home,
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": cluster.users[ACCESS_KEY],
            "AWS_DEFAULT_REGION": REGION,
            "RESTIC_REPOSITORY": f"s3:{cluster.endpoint}/{bucket}",
            "RESTIC_PASSWORD": "torus test repository",
            "RESTIC_CACHE_DIR": str(home / "restic-cache"),
        },
    )
    return Client(cluster, [system_tool("restic")], env)


# -- file trees ------------------------------------------------------------------------------

# Names a sync has to carry through SigV4's canonical path and listings' url encoding.
ODD_NAMES = ("a b.txt", "naïve ü.txt", "plus+sign", "pct%20x", "tilde~", "amp&eq=", "q?mark")


def write_tree(root: Path, sizes: Iterable[int], seed: int, odd_names: bool = True) -> None:
    """Files of ``sizes`` (seeded random bytes) spread over a few directories under ``root``;
    with ``odd_names`` the first files get ODD_NAMES."""
    rng = random.Random(seed)
    for i, size in enumerate(sizes):
        name = ODD_NAMES[i] if odd_names and i < len(ODD_NAMES) else f"f{i:03d}.bin"
        path = root / f"d{i % 5}" / f"s{i % 3}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))


def tree_files(root: Path) -> list[str]:
    """Every file under ``root`` as a relative POSIX path, sorted (as S3 lists keys)."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def assert_same_trees(expected: Path, actual: Path) -> None:
    """The same files under both roots, each compared byte for byte."""
    assert tree_files(actual) == tree_files(expected)
    for name in tree_files(expected):
        assert filecmp.cmp(expected / name, actual / name, shallow=False), name


def md5_hex(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def s3_client(
    cluster: AioCluster, user: str = ACCESS_KEY, secret: str | None = None, **config: Any
) -> Any:
    """boto3, the reference client, as ``user`` (the all-in-one's pairs: access key
    ``account:user``, secret the user's key), default settings (CRC32 checksums on), no
    retries: a test sees the first answer.  ``config``: botocore Config options
    (``signature_version``...)."""
    return boto3.client(
        "s3",
        endpoint_url=cluster.endpoint,
        aws_access_key_id=user,
        aws_secret_access_key=secret if secret is not None else cluster.users[user],
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def status_and_code(exc: ClientError) -> tuple[int, str]:
    """An S3 error's HTTP status and code."""
    response = exc.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def remove_bucket(cluster: AioCluster, bucket: str) -> None:
    """Delete ``bucket`` and whatever a test left in it, multipart uploads in progress too
    (boto3, the reference client, so a
    client under test that failed mid-way cannot fail the clean-up too).  Listings are
    eventually consistent (an update may be queued on a loaded box): it is emptied again
    until the delete goes through."""
    s3 = s3_client(cluster)
    for _ in range(20):
        try:
            for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
                for upload in page.get("Uploads", []):
                    s3.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            s3.delete_bucket(Bucket=bucket)
            return
        except s3.exceptions.NoSuchBucket:
            return
        except ClientError as exc:
            if status_and_code(exc)[1] != "BucketNotEmpty":
                raise
        time.sleep(0.5)
    s3.delete_bucket(Bucket=bucket)
