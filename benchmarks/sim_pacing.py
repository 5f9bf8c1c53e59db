"""Pacing under stalls, simulated: what becomes of the slots of a process that wakes late.

No database and no processes: the sends of one number at ``--rate``, its shared schedule
taken in runs of ``--run`` seconds by ``--processes`` processes in turn, each process
stalling now and then (every ``--stall-every`` seconds on average, for a uniform
``--stall-min`` to ``--stall-max`` seconds) and waking a few milliseconds late otherwise.
Each send is checked by its process's ``core.pacing.Ledger`` as the dispatcher does. A
send refused past its slot either takes a fresh slot at the end of the schedule at once
(``reslot``, what the dispatcher did before) or waits for the room its windows get back
(``Ledger.opening``) when that is at most ``--wait`` after its slot (``wait``, what it
does now). Prints per policy: the whole seconds' median, fewest and most sends, how many
fall under 95 % of the rate, the most in any sliding second, and the fresh slots taken.
The machine's load does not change these figures (unlike ``bench_pacing``).

    .venv/bin/python benchmarks/sim_pacing.py [--rate 500] [--seeds 4]
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass

from agentsms.core.pacing import Ledger

SLACK = 0.02  # core.dispatch._PACING_SLACK
CALL_MARGIN = 0.002  # core.dispatch._CALL_MARGIN
FRESH_SLOT_DELAY = 0.01  # the transaction taking a fresh slot


@dataclass
class Outcome:
    per_second: list[int]
    most_sliding: int
    fresh: int


def simulate(args: argparse.Namespace, policy: str, seed: int) -> Outcome:
    rng = random.Random(seed)
    interval = (1 + SLACK) / args.rate
    start = 1000.0
    ledgers = [Ledger(SLACK) for _ in range(args.processes)]
    # (try at, slot, process)
    pending: list[tuple[float, float, int]] = []
    next_slot, owner = start, 0
    while next_slot < start + args.seconds:
        count = max(1, int(args.run / interval))
        slots = [next_slot + i * interval for i in range(count)]
        next_slot += count * interval
        ledgers[owner].hold(slots)
        pending += [(slot, slot, owner) for slot in slots]
        owner = (owner + 1) % args.processes
    heapq.heapify(pending)
    stalls: list[list[tuple[float, float]]] = []
    for _ in range(args.processes):
        at, mine = start, []
        while at < start + args.seconds + 5:
            at += rng.expovariate(1 / args.stall_every)
            length = rng.uniform(args.stall_min, args.stall_max)
            mine.append((at, at + length))
            at += length
        stalls.append(mine)

    def wakes(process: int, at: float) -> float:
        for begin, end in stalls[process]:
            if begin <= at < end:
                return end
        return at

    sends: list[float] = []
    fresh = 0
    while pending:
        at, slot, process = heapq.heappop(pending)
        now = wakes(process, at) + rng.uniform(0, 0.004)
        ledger = ledgers[process]
        on_time = slot <= now and now + CALL_MARGIN <= slot + SLACK
        if (on_time and ledger.regular(now)) or ledger.room(now) >= 1:
            ledger.sent(now, 1, irregular=not on_time)
            sends.append(now)
            continue
        if slot > now:
            heapq.heappush(pending, (slot, slot, process))
            continue
        if policy == "wait":
            opening = ledger.opening(now)
            if opening is not None and opening - slot <= args.wait:
                heapq.heappush(pending, (opening, slot, process))
                continue
        fresh_slot = max(next_slot, now + FRESH_SLOT_DELAY)
        next_slot = fresh_slot + interval
        ledger.hold([fresh_slot])
        fresh += 1
        heapq.heappush(pending, (now + FRESH_SLOT_DELAY, fresh_slot, process))
    sends.sort()
    counts = Counter(math.floor(t) for t in sends)
    first = math.floor(sends[0]) + 2
    seconds = range(first, first + int(args.seconds) - 4)
    most = max(bisect.bisect_left(sends, t + 1.0) - i for i, t in enumerate(sends))
    return Outcome([counts[s] for s in seconds], most, fresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--run", type=float, default=0.25, help="seconds of slots a claim takes")
    parser.add_argument("--stall-every", type=float, default=1.0)
    parser.add_argument("--stall-min", type=float, default=0.02)
    parser.add_argument("--stall-max", type=float, default=0.06)
    parser.add_argument("--wait", type=float, default=0.25, help="core.dispatch._LATE_WAIT_SECONDS")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    print(
        f"{args.rate:g}/s, {args.processes} processes, runs of {args.run:g} s, stalls of "
        f"{args.stall_min:g}-{args.stall_max:g} s every {args.stall_every:g} s on average, "
        f"{args.seeds} seeds of {args.seconds:g} s"
    )
    for policy in ("reslot", "wait"):
        outcomes = [simulate(args, policy, seed) for seed in range(args.seeds)]
        counts = [n for outcome in outcomes for n in outcome.per_second]
        under = sum(1 for n in counts if n < 0.95 * args.rate)
        print(
            f"{policy:>6}: median {statistics.median(counts):g}/s, fewest {min(counts)}, most "
            f"{max(counts)}; {under} of {len(counts)} seconds under 95 %; most in a sliding "
            f"second {max(o.most_sliding for o in outcomes)}; fresh slots "
            f"{sum(o.fresh for o in outcomes)}"
        )


if __name__ == "__main__":
    main()
