"""Walking the replica -> partition -> device table.

Rows are ``array('I')``, one per replica; only the last row may be shorter
than the partition count (fractional replicas).  These helpers keep that
detail in one place.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator, Sequence

from ring.state import NONE_DEV_ID


def iter_part_devs(rows: Sequence[array], parts: int) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Yield ``(partition, device ids in replica order)`` for every partition."""
    full = [row for row in rows if len(row) == parts]
    short = [row for row in rows if len(row) < parts]
    if not short:
        yield from enumerate(zip(*full, strict=True))
        return
    (tail,) = short  # only the last replica's row may be short
    cut = len(tail)
    yield from enumerate(zip(*(row[:cut] for row in full), tail, strict=True))
    yield from enumerate(zip(*(row[cut:] for row in full), strict=True), start=cut)


def count_parts(rows: Sequence[array]) -> Counter[int]:
    """Partition-replicas held per device id (unassigned slots not counted)."""
    counts: Counter[int] = Counter()
    for row in rows:
        counts.update(row)
    counts.pop(NONE_DEV_ID, None)
    return counts


def count_changed(old_rows: Sequence[array], new_rows: Sequence[array]) -> tuple[int, set[int]]:
    """How many partition-replicas changed device, and which partitions did."""
    changed_parts: set[int] = set()
    changed = 0
    for replica, new in enumerate(new_rows):
        old = old_rows[replica] if replica < len(old_rows) else array(new.typecode)
        common = min(len(old), len(new))
        if old[:common] != new[:common]:
            for part in range(common):
                if old[part] != new[part]:
                    changed += 1
                    changed_parts.add(part)
        changed += len(new) - common  # new slots
        changed_parts.update(range(common, len(new)))
    for old in old_rows[len(new_rows) :]:
        changed += len(old)  # dropped replica rows
    for replica, old in enumerate(old_rows[: len(new_rows)]):
        changed += max(0, len(old) - len(new_rows[replica]))
    return changed, changed_parts
