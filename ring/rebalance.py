"""One rebalance: gather partition-replicas that must or should move, then place them.

The order, each step honouring ``min_part_hours`` and moving at most one
replica of a partition per rebalance (only devices being removed are exempt:
their replicas have nowhere else to be):

1. resize the rows to the replica count (new slots are empty);
2. gather every replica on a removed device;
3. gather replicas that break the replica plan's per-tier maximum (dispersion);
4. place everything gathered;
5. a few rounds of: gather from devices holding more than they want, place.

Placement walks the tier tree from the root.  Below a node that holds none
of this partition's replicas yet (and that no must-reach tier sits under), it
draws a child weighted by the partition-replicas still wanted there; otherwise
it takes the best child among those the plan lets hold one more replica of
this partition.  Either way the cost of placing one replica is the sum of the
fan-outs along one path, not the device count.
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from dataclasses import dataclass

from ring.assignment import count_changed, count_parts, iter_part_devs
from ring.errors import RingValidationError
from ring.plan import ReplicaPlan, build_plan, parts_wanted
from ring.state import DEV_ID_TYPECODE, NONE_DEV_ID, BuilderState, row_lengths
from ring.tiers import DEVICE_DEPTH, ROOT, TierTree

BALANCE_ROUNDS = 4
HOUR_S = 3600
NEVER_MOVED = 0xFF


@dataclass(frozen=True)
class RebalanceOutcome:
    parts_moved: int  # partition-replicas whose device changed
    removed_devices: int
    plan_reached: bool  # no device holds more than the plan wants


def age_last_part_moves(state: BuilderState, now_s: float) -> None:
    """Add the hours passed since the last rebalance to every partition's age."""
    parts = 1 << state.part_power
    if state.last_part_moves is None or len(state.last_part_moves) != parts:
        state.last_part_moves = bytearray([NEVER_MOVED]) * parts
    hours = int(now_s - state.last_part_moves_epoch) // HOUR_S
    if hours > 0:
        table = bytes(min(age + hours, NEVER_MOVED) for age in range(256))
        state.last_part_moves = bytearray(state.last_part_moves.translate(table))
        state.last_part_moves_epoch = int(now_s)


class _Rebalance:
    def __init__(self, state: BuilderState, rng: random.Random) -> None:
        self.state = state
        self.rng = rng
        self.parts = 1 << state.part_power
        self.removed = set(state.removed_dev_ids)
        live = [d for d in state.devices if d is not None and d.id not in self.removed]
        weighted = sum(1 for d in live if d.weight > 0)
        if weighted < state.replicas:
            raise RingValidationError(
                f"{state.replicas:g} replicas need at least {state.replicas:g} devices "
                f"with weight, there are {weighted}"
            )
        self.tree = TierTree(live)
        self.plan: ReplicaPlan = build_plan(self.tree, state.replicas, state.overload)
        lengths = row_lengths(state.part_power, state.replicas)
        self.want = parts_wanted(self.tree, self.plan, sum(lengths), self.parts)
        self.rows = self._resized_rows(lengths)
        self.have = Counter(count_parts(self.rows))
        self.moved = bytearray(self.parts)  # 1: a replica of this part moved this time
        self.ages = state.last_part_moves
        self.min_part_hours = state.min_part_hours

    def _resized_rows(self, lengths: list[int]) -> list[array]:
        """Rows cut or grown to ``lengths``; new slots hold NONE_DEV_ID."""
        old = self.state.replica2part2dev or []
        rows = []
        for replica, length in enumerate(lengths):
            row = (
                array(DEV_ID_TYPECODE, old[replica][:length])
                if replica < len(old)
                else array(DEV_ID_TYPECODE)
            )
            row.extend([NONE_DEV_ID] * (length - len(row)))
            rows.append(row)
        return rows

    def can_move(self, part: int) -> bool:
        return not self.moved[part] and self.ages[part] >= self.min_part_hours

    def unassign(self, replica: int, part: int) -> None:
        dev_id = self.rows[replica][part]
        self.rows[replica][part] = NONE_DEV_ID
        self.have[dev_id] -= 1
        self.moved[part] = 1

    def gather_removed(self) -> None:
        if not self.removed:
            return
        for replica, row in enumerate(self.rows):
            for part, dev_id in enumerate(row):
                if dev_id in self.removed:
                    self.unassign(replica, part)

    def gather_dispersion(self) -> None:
        """Unassign one replica of each movable partition that breaks the plan's maximum."""
        path = self.tree.path
        plan_max = self.plan.max
        over_cap = {n for n, m in enumerate(plan_max) if m < 1}
        for part, dev_ids in iter_part_devs(self.rows, self.parts):
            nodes = [n for d in dev_ids if d != NONE_DEV_ID for n in path[d]]
            if len(set(nodes)) == len(nodes) and over_cap.isdisjoint(nodes):
                continue  # common case: every replica in its own tier everywhere
            if not self.can_move(part):
                continue
            counts = Counter(nodes)
            offenders = [
                (self.want[d] - self.have[d], replica)
                for replica, d in enumerate(dev_ids)
                if d != NONE_DEV_ID and any(counts[n] > plan_max[n] for n in path[d])
            ]
            if offenders:
                self.unassign(min(offenders)[1], part)

    def gather_balance(self) -> int:
        """Unassign surplus replicas from devices holding more than they want.

        Only replicas that some device still wanting partitions could take
        without breaking the plan are gathered; the others would only come
        back where they were.
        """
        surplus = {d: self.have[d] - self.want.get(d, 0) for d in self.have}
        surplus = {d: s for d, s in surplus.items() if s > 0}
        wanting = [d for d, w in self.want.items() if self.have[d] < w]
        if not surplus or not wanting:
            return 0
        held: dict[int, list[tuple[int, int]]] = {d: [] for d in sorted(surplus)}
        for replica, row in enumerate(self.rows):
            for part, dev_id in enumerate(row):
                if dev_id in surplus:
                    held[dev_id].append((part, replica))
        gathered = 0
        for dev_id, slots in held.items():
            self.rng.shuffle(slots)
            left = surplus[dev_id]
            # First shed replicas that share a failure domain with another
            # replica of their partition: moving those fixes dispersion too.
            for only_crowded in (True, False):
                for part, replica in slots:
                    if left == 0:
                        break
                    if self.rows[replica][part] != dev_id or not self.can_move(part):
                        continue
                    if only_crowded and not self._crowded(part, dev_id):
                        continue
                    if not self._fits_elsewhere(part, dev_id, wanting):
                        continue
                    self.unassign(replica, part)
                    left -= 1
                    gathered += 1
        return gathered

    def _other_paths(self, part: int, dev_id: int) -> list[tuple[int, int, int, int]]:
        """Tier paths of ``part``'s placed replicas other than the one on ``dev_id``."""
        path = self.tree.path
        return [
            path[row[part]]
            for row in self.rows
            if part < len(row) and row[part] != dev_id and row[part] in path
        ]

    def _fits_elsewhere(self, part: int, dev_id: int, wanting: list[int]) -> bool:
        """Could a device in ``wanting`` take ``part``'s replica now on ``dev_id``?"""
        path, plan_max = self.tree.path, self.plan.max
        counts = Counter(n for other in self._other_paths(part, dev_id) for n in other)
        return any(all(counts[n] < plan_max[n] for n in path[d]) for d in wanting)

    def _crowded(self, part: int, dev_id: int) -> bool:
        """Does another replica of ``part`` share a region, zone or host with ``dev_id``?"""
        mine = self.tree.path[dev_id]
        return any(
            mine[0] == theirs[0] or mine[1] == theirs[1] or mine[2] == theirs[2]
            for theirs in self._other_paths(part, dev_id)
        )

    def empty_slots(self) -> dict[int, list[int]]:
        slots: dict[int, list[int]] = {}
        for replica, row in enumerate(self.rows):
            if NONE_DEV_ID not in row:
                continue
            for part, dev_id in enumerate(row):
                if dev_id == NONE_DEV_ID:
                    slots.setdefault(part, []).append(replica)
        return dict(sorted(slots.items()))

    def place(self, slots: dict[int, list[int]], *, overfill_must: bool) -> None:
        """Fill the empty slots, walking the tier tree (see the module docstring).

        With ``overfill_must``, a tier every partition must reach takes the
        replica even when it wants no more partition-replicas; the balance
        rounds then shed its doubled-up replicas instead.  The balance rounds
        themselves place without it, so that they converge.
        """
        tree, plan_min = self.tree, self.plan.min
        children, path = tree.children, tree.path
        leaf_dev = {node: dev.id for node, dev in tree.device_of_node.items()}
        available = [0] * len(tree)
        for dev_id in tree.device_node:
            room = max(self.want.get(dev_id, 0) - self.have[dev_id], 0)
            for n in (ROOT, *path[dev_id]):
                available[n] += room
        count = [0] * len(tree)
        # Tiers every partition must reach (plan min >= 1) keep room reserved
        # for the partitions still lacking them, so that doubling up a
        # replica elsewhere cannot use up a tier some later partition needs.
        must = [n for n in range(1, len(tree)) if plan_min[n] > 0]
        must_below = [False] * len(tree)
        for n in must:
            must_below[tree.parent[n]] = True
        random = self.rng.random
        lacking = [0] * len(tree)
        for part in slots:
            touched = self._count_held(part, count)
            for n in must:
                lacking[n] += max(plan_min[n] - count[n], 0)
            for n in touched:
                count[n] = 0
            count[ROOT] = 0
        for part, replicas in slots.items():
            touched = self._count_held(part, count)
            for replica in replicas:
                node = ROOT
                for _depth in range(DEVICE_DEPTH):
                    if count[node] or must_below[node] or available[node] <= 0:
                        node = self._choose(
                            children[node], count, available, lacking, overfill_must
                        )
                        continue
                    # Fast path, most steps: nothing of this partition below
                    # and no tier the plan insists on, so every child
                    # qualifies; draw one weighted by room.
                    draw = random() * available[node]
                    for child in children[node]:
                        room = available[child]
                        if room > 0:
                            draw -= room
                            if draw < 0:
                                node = child
                                break
                    else:
                        node = self._choose(
                            children[node], count, available, lacking, overfill_must
                        )
                dev_id = leaf_dev[node]
                self.rows[replica][part] = dev_id
                self.have[dev_id] += 1
                # The root counts too: its count is what keeps the next
                # replica of this partition off the fast path above.
                count[ROOT] += 1
                available[ROOT] -= 1
                for n in path[dev_id]:
                    if count[n] < plan_min[n]:
                        lacking[n] -= 1
                    available[n] -= 1
                    count[n] += 1
                    touched.append(n)
            for n in touched:
                count[n] = 0
            count[ROOT] = 0

    def _count_held(self, part: int, count: list[int]) -> list[int]:
        """Add the tiers of ``part``'s placed replicas to ``count``; return them.

        ``tree.path`` starts at the region, so the root is set apart: its
        count is the number of replicas placed, and it is not in the list
        returned (callers zero it themselves).  Without it, a partition with
        a replica placed took the root's fast path and could be sent back to
        the region it was in, there to find no device left.
        """
        path = self.tree.path
        held = [row[part] for row in self.rows if part < len(row) and row[part] in path]
        touched = [n for dev_id in held for n in path[dev_id]]
        for n in touched:
            count[n] += 1
        count[ROOT] = len(held)
        return touched

    def _choose(
        self,
        kids: list[int],
        count: list[int],
        available: list[int],
        lacking: list[int],
        overfill_must: bool,
    ) -> int:
        """Pick the child that takes the next replica of a partition.

        Only children the plan lets hold one more replica of this partition
        qualify.  Among those with room (partition-replicas still wanted,
        less what is reserved for other partitions), the ones holding the
        fewest replicas of this partition already win (dispersion first);
        among those, a random draw weighted by room (balance second).  The
        draw matters: always taking the roomiest child makes devices fill in
        lockstep, so that two devices end up sharing most of their
        partitions, and losing both loses those partitions.
        """
        plan_max, plan_min = self.plan.max, self.plan.min
        best_count = 1 << 30
        picks: list[int] = []
        weights: list[int] = []
        total = 0
        must, must_key = -1, (False, 0)
        fallback, fallback_key = -1, (0, 0)
        for child in kids:
            held_here = count[child]
            if held_here >= plan_max[child]:
                continue
            room = available[child]
            need = plan_min[child] - held_here
            if need > 0:
                # Room reserved for partitions lacking this tier includes
                # this partition's own share.
                room += need - lacking[child]
                if overfill_must or room > 0:
                    # The plan says every partition has a replica here:
                    # that comes before balance.
                    key = (room > 0, available[child])
                    if must < 0 or key > must_key:
                        must, must_key = child, key
                    continue
            elif lacking[child]:
                room -= lacking[child]
            if room <= 0:
                key = (-held_here, available[child])
                if fallback < 0 or key > fallback_key:
                    fallback, fallback_key = child, key
            elif held_here < best_count:
                best_count, picks, weights, total = held_here, [child], [room], room
            elif held_here == best_count:
                picks.append(child)
                weights.append(room)
                total += room
        if must >= 0:
            return must
        if not picks:
            return fallback if fallback >= 0 else self._least_bad(kids, count, available)
        if len(picks) == 1:
            return picks[0]
        draw = self.rng.random() * total
        for child, weight in zip(picks, weights, strict=True):
            draw -= weight
            if draw < 0:
                return child
        return picks[-1]

    def _least_bad(self, kids: list[int], count: list[int], available: list[int]) -> int:
        """No child may take another replica by the plan: overfill the one hurt least.

        The child must still have a weighted device free of this partition.
        """
        plan_max, device_count = self.plan.max, self.tree.device_count
        roomy = [c for c in kids if count[c] < device_count[c]]
        if not roomy:
            raise RingValidationError("no device left to hold another replica of a partition")
        return min(roomy, key=lambda c: (count[c] - plan_max[c], -available[c]))

    def plan_reached(self) -> bool:
        return all(self.have[d] <= self.want.get(d, 0) for d in self.have)


def rebalance(state: BuilderState, *, now_s: float, rng: random.Random) -> RebalanceOutcome:
    """Rebalance ``state`` in place; see the module docstring for the steps."""
    age_last_part_moves(state, now_s)
    old_rows = state.replica2part2dev or []
    work = _Rebalance(state, rng)
    work.gather_removed()
    work.gather_dispersion()
    work.place(work.empty_slots(), overfill_must=True)
    for _ in range(BALANCE_ROUNDS):
        if work.plan_reached() or not work.gather_balance():
            break
        work.place(work.empty_slots(), overfill_must=False)
    changed, changed_parts = count_changed(old_rows, work.rows)
    for part in changed_parts:
        state.last_part_moves[part] = 0
    state.last_part_moves_epoch = int(now_s)
    state.replica2part2dev = work.rows
    for dev_id in work.removed:
        state.devices[dev_id] = None
    state.removed_dev_ids = []
    return RebalanceOutcome(changed, len(work.removed), work.plan_reached())
