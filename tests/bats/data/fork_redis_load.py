#!/usr/bin/env python3
"""fork_redis_load.py - pipelined load for the Redis BGSAVE test in fork.bats.

  fork_redis_load.py fill MB SEED     RESP commands (for redis-cli --pipe) that store
                                      about MB megabytes of strings, hashes and lists
  fork_redis_load.py mutate MB SEED   RESP commands that overwrite, add, extend and
                                      delete keys of a `fill` load (about MB megabytes)

Values are random bytes from a seeded generator (the same seed gives the same load).
Key names: s:N (string, 16 B..16 KiB), h:N (hash of 8 fields), l:N (list of 12
elements); `mutate` writes m:N (new strings) and touches the others.
"""
import random
import sys


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def value_len(rnd):
    # mostly small, some medium, a few large (log-uniform-ish from 16 B to 16 KiB)
    r = rnd.random()
    if r < 0.70:
        return rnd.randint(16, 512)
    if r < 0.95:
        return rnd.randint(512, 4096)
    return rnd.randint(4096, 16384)


def fill(mb, seed):
    rnd = random.Random(seed)
    out = sys.stdout.buffer
    target = mb << 20
    done = 0
    n = 0
    buf = []
    while done < target:
        kind = rnd.random()
        if kind < 0.70:
            v = rnd.randbytes(value_len(rnd))
            buf.append(resp(b"SET", b"s:%d" % n, v))
            done += len(v)
        elif kind < 0.85:
            args = [b"HSET", b"h:%d" % n]
            for f in range(8):
                v = rnd.randbytes(rnd.randint(8, 300))
                args += [b"f%d" % f, v]
                done += len(v)
            buf.append(resp(*args))
        else:
            args = [b"RPUSH", b"l:%d" % n]
            for _ in range(12):
                v = rnd.randbytes(rnd.randint(8, 200))
                args.append(v)
                done += len(v)
            buf.append(resp(*args))
        n += 1
        if len(buf) >= 2000:
            out.write(b"".join(buf))
            buf = []
    out.write(b"".join(buf))
    sys.stderr.write("fill: %d keys, %d payload bytes\n" % (n, done))


def mutate(mb, seed):
    rnd = random.Random(seed ^ 0x5EED)
    out = sys.stdout.buffer
    target = mb << 20
    done = 0
    n = 0
    buf = []
    # the fill made about mb*2000 keys; pick victims among the first ones
    span = max(1000, mb * 1500)
    while done < target:
        kind = rnd.random()
        k = rnd.randrange(span)
        if kind < 0.40:
            v = rnd.randbytes(value_len(rnd))
            buf.append(resp(b"SET", b"s:%d" % k, v))
        elif kind < 0.70:
            v = rnd.randbytes(value_len(rnd))
            buf.append(resp(b"SET", b"m:%d" % n, v))
        elif kind < 0.80:
            v = rnd.randbytes(rnd.randint(8, 300))
            buf.append(resp(b"HSET", b"h:%d" % k, b"f%d" % rnd.randrange(12), v))
        elif kind < 0.90:
            v = rnd.randbytes(rnd.randint(8, 200))
            buf.append(resp(b"LPUSH", b"l:%d" % k, v))
        else:
            v = b""
            buf.append(resp(b"DEL", b"s:%d" % k, b"h:%d" % k, b"l:%d" % k))
        done += len(v) + 16
        n += 1
        if len(buf) >= 2000:
            out.write(b"".join(buf))
            buf = []
    out.write(b"".join(buf))
    sys.stderr.write("mutate: %d commands\n" % n)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("fill", "mutate"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    mb, seed = int(sys.argv[2]), int(sys.argv[3])
    (fill if sys.argv[1] == "fill" else mutate)(mb, seed)


if __name__ == "__main__":
    main()
