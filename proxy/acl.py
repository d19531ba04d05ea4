"""Container ACLs (``X-Container-Read``, ``X-Container-Write``): Swift's v1 format, pure.

An ACL is a comma-separated list of items (swift/common/middleware/acl.py):

- ``.r:<host>`` — a referrer rule (read ACLs only): ``.r:*`` any referrer, even none;
  ``.r:example.com`` that host; ``.r:.example.com`` (or ``.r:*.example.com``) that domain;
  a leading ``-`` denies instead (``.r:-thief.example.com``).  Rules apply in order, the last
  match deciding.  ``.ref``, ``.referer`` and ``.referrer`` are spellings of ``.r``.
- ``.rlistings`` — a referrer rule that allows reading objects also allows the listing.
- anything else — a group: an account (``test2``, every user of it), a user
  (``test2:tester2``) or a group a user was given.

``clean_acl`` validates and normalises what a client sends on container PUT/POST (a
``ValueError`` with Swift's message becomes a 400); ``parse_acl`` and ``referrer_allowed``
read a stored ACL back when a request is authorised (proxy/authz.py).  A referrer rule is a
statement about the Referer header, which any client can forge: ``.r:example.com`` is a
hot-linking policy, not security.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote, urlparse

READ_ACL = "x-container-read"
WRITE_ACL = "x-container-write"
LISTINGS = ".rlistings"
_REFERRER_DESIGNATORS = (".r", ".ref", ".referer", ".referrer")


def clean_acl(name: str, value: str) -> str:
    """``value`` of the ACL header ``name``, normalised; ``ValueError`` if malformed.

    ``" bob , .referrer : *"`` → ``"bob,.r:*"``.  Referrer rules in a write ACL, a referrer
    rule with no host, and an unknown ``.designator:`` are errors (Swift's messages).
    """
    items: list[str] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        if ":" not in item:
            items.append(item)
            continue
        first, second = (part.strip() for part in item.split(":", 1))
        if not first.startswith("."):
            items.append(item)  # a user, "account:user"
        elif first in _REFERRER_DESIGNATORS:
            if "write" in name.lower():
                raise ValueError(f"Referrers not allowed in write ACL: {item!r}")
            negate = second.startswith("-")
            if negate:
                second = second[1:].strip()
            if second != "*" and second.startswith("*"):
                second = second[1:].strip()  # "*.example.com" is ".example.com"
            if not second or second == ".":
                raise ValueError(
                    f"No host/domain value after referrer designation in ACL: {item!r}"
                )
            items.append(f".r:{'-' if negate else ''}{second}")
        else:
            raise ValueError(f"Unknown designator {first!r} in ACL: {item!r}")
    return ",".join(items)


def parse_acl(text: str | None) -> tuple[list[str], list[str]]:
    """A cleaned ACL as ``(referrers, groups)``: referrer rules without their ``.r:``, and
    every other item (percent-decoded, as Swift's parse_acl_v1 does)."""
    referrers: list[str] = []
    groups: list[str] = []
    for item in (text or "").split(","):
        if not item:
            continue
        if item.startswith(".r:"):
            referrers.append(item[len(".r:") :])
        else:
            groups.append(unquote(item))
    return referrers, groups


def referrer_allowed(referrer: str | None, referrers: Sequence[str]) -> bool:
    """Whether the rules ``referrers`` (from ``parse_acl``) let a request with this Referer
    header in.  The last rule that matches decides; a request without a Referer has the
    host ``unknown``, which only ``*`` (or a rule naming "unknown") matches."""
    host = _referrer_host(referrer)
    allowed = False
    for rule in referrers:
        if not rule:
            continue
        if rule.startswith("-"):
            if _host_matches(rule[1:], host):
                allowed = False
        elif rule == "*" or _host_matches(rule, host):
            allowed = True
    return allowed


def _host_matches(rule: str, host: str) -> bool:
    return rule == host or (rule.startswith(".") and host.endswith(rule))


def _referrer_host(referrer: str | None) -> str:
    try:
        return urlparse(referrer or "").hostname or "unknown"
    except ValueError:  # a malformed URL (an unclosed "[" IPv6 host)
        return "unknown"
