"""The ``[identity]`` table: the v1 auth service, and what a proxy needs to check its tokens.

::

    [identity]
    bind_port = 5000
    token_secret = "at least 16 characters, shared with every proxy"
    token_ttl_s = 86400

    [identity.users]
    "test:tester" = "testing .admin"

``users`` is empty by default: a production cluster lists its own.  The all-in-one writes
``identity.users.TEST_USERS`` into its config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.config import ServerConfig

from .users import UserDirectory

MIN_SECRET_CHARS = 16


@dataclass(frozen=True)
class IdentityConfig(ServerConfig):
    bind_port: int = 5000
    # Required: identity and every proxy must share it.  Anyone who knows it can mint tokens.
    token_secret: str = ""
    token_ttl_s: float = 86400.0  # tempauth's token_life
    reseller_prefix: str = "AUTH_"  # storage account = reseller_prefix + account
    # "https://swift.example.com" (a path is kept): storage URLs are <base>/v1/AUTH_<account>;
    # "": built from each request's scheme and Host.
    storage_url_base: str = ""
    users: dict[str, str] = field(default_factory=dict)  # "account:user" -> "key group ..."

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.token_secret:
            raise ValueError("token_secret is required (identity and proxies must share it)")
        if len(self.token_secret) < MIN_SECRET_CHARS:
            raise ValueError(f"token_secret must be at least {MIN_SECRET_CHARS} characters")
        if self.token_ttl_s <= 0:
            raise ValueError("token_ttl_s must be > 0")
        if self.reseller_prefix and not self.reseller_prefix.endswith("_"):
            raise ValueError(f"reseller_prefix must end with '_', got {self.reseller_prefix!r}")
        scheme, _, rest = self.storage_url_base.partition("://")
        if self.storage_url_base and (scheme not in ("http", "https") or not rest.strip("/")):
            raise ValueError(
                "storage_url_base must be 'http(s)://host[:port][/path]', "
                f"got {self.storage_url_base!r}"
            )
        UserDirectory.from_config(self.users, reseller_prefix=self.reseller_prefix)  # checks
