"""EC2-style credentials for S3: an access key, its secret, and who it speaks for.

S3 clients sign each request with a secret they share with the server (SigV4), so the proxy
must hold the secret itself, where Swift tokens need only a shared token key.  Until the
Keystone-style service of DESIGN.md keeps per-user EC2 credentials, each configured user
(identity/users.py) has one pair, as Swift's s3api gives tempauth users: access key
``account:user``, secret = the user's key (``test:tester`` / ``testing``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .tokens import Identity
from .users import UserDirectory


@dataclass(frozen=True)
class Ec2Credential:
    access_key: str
    secret: str
    identity: Identity  # the same account, user and groups a token of that user carries


class Ec2Credentials:
    """Access key -> credential."""

    def __init__(self, credentials: dict[str, Ec2Credential]) -> None:
        self._credentials = credentials

    @classmethod
    def from_directory(cls, directory: UserDirectory) -> Ec2Credentials:
        credentials = {}
        for name, account, user, key, groups in directory.entries():
            identity = Identity(account=account, user=user, groups=groups, expires_at=math.inf)
            credentials[name] = Ec2Credential(name, key, identity)
        return cls(credentials)

    def get(self, access_key: str) -> Ec2Credential | None:
        return self._credentials.get(access_key)
