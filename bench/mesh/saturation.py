#!/usr/bin/env python3
"""saturation.py - where random meshing stops: a simulation of the split mesher.

Spans of SLOTS slots each start with every slot live with probability P. Each pass
takes the spans under 80% occupancy, shuffles them, splits them in halves and probes
every left span against PROBES right spans; a disjoint pair becomes one span (the
union of the two bitmaps). After PASSES passes it prints the span count before and
after and the final occupancy. It shows that the final occupancy depends on the slot
count, not on the probes or the number of passes: 16-slot spans end near 64%,
whatever P was.

usage: saturation.py [SLOTS=16] [P=0.15] [PROBES=64] [SPANS=12000] [PASSES=40] [SEED=1]
"""
import random
import sys


def popcount(m):
    return bin(m).count("1")


def run(slots, p, probes, n, passes, seed):
    rnd = random.Random(seed)
    spans = []
    for _ in range(n):
        m = 0
        for b in range(slots):
            if rnd.random() < p:
                m |= 1 << b
        if m:
            spans.append(m)
    start = len(spans)
    for _ in range(passes):
        cand = [m for m in spans if popcount(m) * 5 < slots * 4]
        rest = [m for m in spans if popcount(m) * 5 >= slots * 4]
        rnd.shuffle(cand)
        half = len(cand) // 2
        left, right = cand[:half], cand[half:]
        used = [False] * len(right)
        out = []
        for i, a in enumerate(left):
            for k in range(min(probes, len(right))):
                r = (i + k) % len(right)
                if not used[r] and a & right[r] == 0:
                    out.append(a | right[r])
                    used[r] = True
                    break
            else:
                out.append(a)
        out += [right[r] for r in range(len(right)) if not used[r]]
        spans = out + rest
    live = sum(popcount(m) for m in spans)
    return start, len(spans), live / (len(spans) * slots)


def main():
    args = sys.argv[1:]
    try:
        slots = int(args[0]) if len(args) > 0 else 16
        p = float(args[1]) if len(args) > 1 else 0.15
        probes = int(args[2]) if len(args) > 2 else 64
        n = int(args[3]) if len(args) > 3 else 12000
        passes = int(args[4]) if len(args) > 4 else 40
        seed = int(args[5]) if len(args) > 5 else 1
    except ValueError as e:
        sys.exit("saturation.py: bad argument: %s" % e)
    if not (1 <= slots <= 256 and 0 < p < 1 and probes >= 1 and n >= 2 and passes >= 1):
        sys.exit("saturation.py: need 1 <= SLOTS <= 256, 0 < P < 1, PROBES >= 1, SPANS >= 2, PASSES >= 1")
    start, end, occ = run(slots, p, probes, n, passes, seed)
    print("slots=%d p=%.2f probes=%d: %d spans -> %d, final occupancy %.0f%%" % (slots, p, probes, start, end, occ * 100))


if __name__ == "__main__":
    main()
