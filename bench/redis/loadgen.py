#!/usr/bin/env python3
"""loadgen.py - deterministic Redis load for bench/mesh-report (no redis module).

  loadgen.py set PREFIX COUNT MINLEN MAXLEN SEED   > file   RESP SET commands
  loadgen.py del PREFIX COUNT PCT SEED             > file   RESP DEL commands
  loadgen.py kept COUNT PCT SEED                             how many keys `del` keeps
  loadgen.py check PORT PREFIX COUNT MINLEN MAXLEN SEED [DELPCT DELSEED] [--samples N]

Key i (0 <= i < COUNT) is PREFIX + decimal i. Its value has a length drawn in
[MINLEN, MAXLEN] from a hash of (SEED, i) and its content is derived from i, so
anyone can recompute it. `del` deletes key i when hash(DELSEED, i) % 100 < PCT.
The output of set/del is meant for `redis-cli --pipe`.

`check` connects to 127.0.0.1:PORT and GETs a sample of keys: a key that exists
must hold exactly its value; with DELPCT, a deleted key must be absent and every
kept key present (no eviction in that experiment). Prints
"check ok present=N absent=M" or "check FAIL ..." (exit 1).
"""
import socket
import sys

MASK = (1 << 64) - 1


def mix(seed, i):
    """splitmix64 of seed and i"""
    z = (seed * 0x9E3779B97F4A7C15 + i + 1) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def value(prefix, i, minlen, maxlen, seed):
    n = minlen + mix(seed, i) % (maxlen - minlen + 1)
    unit = ("%s%x|" % (prefix, i)).encode()
    return (unit * (n // len(unit) + 1))[:n]


def deleted(i, pct, seed):
    return mix(seed ^ 0x5DEECE66D, i) % 100 < pct


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def gen_set(prefix, count, minlen, maxlen, seed):
    w = sys.stdout.buffer
    p = prefix.encode()
    buf = []
    for i in range(count):
        buf.append(resp(b"SET", p + b"%d" % i, value(prefix, i, minlen, maxlen, seed)))
        if len(buf) == 10000:
            w.write(b"".join(buf))
            buf = []
    w.write(b"".join(buf))


def gen_del(prefix, count, pct, seed):
    w = sys.stdout.buffer
    p = prefix.encode()
    buf = []
    for i in range(count):
        if deleted(i, pct, seed):
            buf.append(resp(b"DEL", p + b"%d" % i))
        if len(buf) == 10000:
            w.write(b"".join(buf))
            buf = []
    w.write(b"".join(buf))


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        self.s.sendall(resp(*[a if isinstance(a, bytes) else str(a).encode() for a in args]))
        return self.reply()

    def reply(self):
        line = self.f.readline()
        if not line:
            raise RuntimeError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b":":
            return int(rest)
        if t == b"-":
            raise RuntimeError(rest.decode())
        return rest


def check(argv):
    samples = 2000
    if "--samples" in argv:
        k = argv.index("--samples")
        samples = int(argv[k + 1])
        del argv[k:k + 2]
    port, prefix, count, minlen, maxlen, seed = (int(argv[0]), argv[1], int(argv[2]), int(argv[3]),
                                                 int(argv[4]), int(argv[5]))
    delpct = int(argv[6]) if len(argv) > 6 else None
    delseed = int(argv[7]) if len(argv) > 7 else 0
    c = Conn(port)
    present = absent = 0
    step = max(1, count // samples)
    for i in range(0, count, step):
        v = c.cmd("GET", prefix + str(i))
        if v is None:
            absent += 1
            if delpct is not None and not deleted(i, delpct, delseed):
                print("check FAIL key %s%d missing (it was not deleted)" % (prefix, i))
                return 1
            continue
        present += 1
        if delpct is not None and deleted(i, delpct, delseed):
            print("check FAIL key %s%d still present after DEL" % (prefix, i))
            return 1
        want = value(prefix, i, minlen, maxlen, seed)
        if v != want:
            print("check FAIL key %s%d holds %d bytes %r..., expected %d bytes %r..." %
                  (prefix, i, len(v), v[:24], len(want), want[:24]))
            return 1
    print("check ok present=%d absent=%d" % (present, absent))
    return 0


def main():
    a = sys.argv[1:]
    if not a:
        print(__doc__, file=sys.stderr)
        return 2
    if a[0] == "set" and len(a) == 6:
        gen_set(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]))
        return 0
    if a[0] == "del" and len(a) == 5:
        gen_del(a[1], int(a[2]), int(a[3]), int(a[4]))
        return 0
    if a[0] == "kept" and len(a) == 4:
        count, pct, seed = int(a[1]), int(a[2]), int(a[3])
        print(sum(1 for i in range(count) if not deleted(i, pct, seed)))
        return 0
    if a[0] == "check" and len(a) >= 7:
        return check(a[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
