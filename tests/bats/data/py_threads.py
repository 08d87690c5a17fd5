#!/usr/bin/env python3
"""Allocation-heavy, multi-threaded Python workload with deterministic output.

Several threads build, mutate and tear down big dicts, lists, strings and
bytes objects (large containers go through the C allocator even with
pymalloc), exchange objects through a queue so they are freed by another
thread, and report digests.  Output depends only on the seeds, never on
scheduling or hash randomisation (results are sorted or order-independent).
"""
import hashlib
import json
import queue
import random
import sys
import threading

N_THREADS = 4
N_KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 60000

results = {}
exchange = queue.Queue()
shared = {}
shared_lock = threading.Lock()


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def work(tid):
    rnd = random.Random(1000 + tid)
    h = hashlib.sha256()

    # 1. a big dict of strings -> lists, then mutate it
    d = {}
    for i in range(N_KEYS):
        k = "k%d-%08x" % (tid, rnd.getrandbits(32))
        d[k] = [i, str(i) * (i % 7), rnd.random()]
    for k in list(d)[::3]:
        del d[k]
    for i in range(N_KEYS // 4):
        d["extra%d" % i] = {"i": i, "s": "x" * (i % 50)}
    h.update(digest(sorted(d.items(), key=lambda kv: kv[0])[:2000]).encode())
    size_after = len(d)

    # 2. growing and shrinking lists / strings / bytes
    chunks = []
    for i in range(3000):
        n = rnd.randrange(1, 20000)
        chunks.append(bytes((i + j) & 0xFF for j in range(n % 257)) * (n // 257 + 1))
        if len(chunks) > 200:
            chunks.pop(rnd.randrange(len(chunks)))
    blob = b"".join(chunks)
    h.update(hashlib.sha256(blob).digest())
    text = " ".join("%s:%d" % (k[:6], len(v)) for k, v in list(d.items())[:20000])
    h.update(text.upper().replace("K", "q").encode())

    # 3. hand big objects to the other threads (freed there)
    for i in range(200):
        exchange.put(("%d-%d" % (tid, i), bytearray(rnd.randrange(100, 100000))))

    # 4. JSON round trip of a nested structure
    nested = {str(i): [list(range(i % 30)), {"v": "y" * (i % 100)}] for i in range(5000)}
    s = json.dumps(nested, sort_keys=True)
    back = json.loads(s)
    assert back == nested
    h.update(hashlib.sha256(s.encode()).digest())

    # 5. shared dict under a lock
    with shared_lock:
        for i in range(5000):
            shared["%d:%d" % (tid, i)] = "v" * (i % 40)

    # consume (and free) objects produced by other threads
    freed = 0
    while True:
        try:
            _name, buf = exchange.get(timeout=0.5)
        except queue.Empty:
            break
        buf[0:1] = b"z"
        freed += 1
        del buf
    del d, chunks, blob, nested, back
    results[tid] = (size_after, h.hexdigest()[:32], freed)


threads = [threading.Thread(target=work, args=(t,)) for t in range(N_THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()

# whatever the threads did not pick up is freed by the main thread
total_freed = 0
while not exchange.empty():
    exchange.get_nowait()
    total_freed += 1
for tid in sorted(results):
    size_after, hx, freed = results[tid]
    total_freed += freed
    print("thread %d: dict %d entries, digest %s" % (tid, size_after, hx))
# who freed what depends on scheduling; the total does not
print("exchanged objects freed: %d" % total_freed)
print("shared dict: %d entries, digest %s" % (len(shared), digest(sorted(shared.items()))))
