# py_mesh.py MODE - Python's heap (PYTHONMALLOC=malloc: every object from libmesh)
# fragmented, meshed with mesh.compact through ctypes, then fork / multiprocessing.
#
# stdout is deterministic (the same with and without libmesh); libmesh's numbers go
# to stderr as "mesh: name=value ...".  Without libmesh (no mesh_mallctl in the
# process) nothing is meshed and only the results are checked.
#   fork   meshed heap, then os.fork(): the child verifies every survivor, changes
#          some, builds and meshes more, verifies again, exits 0; the parent's data
#          is unchanged afterwards; twice, the second time from a thread
#   pool   meshed heap, then multiprocessing.Pool(3).map over the survivors
import ctypes
import gc
import hashlib
import os
import sys
import threading

try:
    _ctl = ctypes.CDLL(None).mesh_mallctl
    _ctl.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
except AttributeError:
    _ctl = None


def stat(name):
    if _ctl is None:
        return 0
    v, n = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
    rc = _ctl(name.encode(), ctypes.byref(v), ctypes.byref(n), None, 0)
    if rc != 0:
        raise SystemExit("mesh_mallctl(%s) = %d" % (name, rc))
    return v.value


def compact():
    if _ctl is not None:
        rc = _ctl(b"mesh.compact", None, None, None, 0)
        if rc != 0:
            raise SystemExit("mesh.compact = %d" % rc)


def report(tag):
    if _ctl is not None:
        print("mesh: %s pid=%d mesh_count=%d aliases=%d meshed_bytes=%d" % (
            tag, os.getpid(), stat("stats.mesh_count"), stat("stats.mesh_aliases"),
            stat("stats.meshed_bytes")), file=sys.stderr, flush=True)


def value(i):
    return {"id": i, "name": "object-%07d" % i, "tags": ["t%d" % (i % 7), "u%d" % (i % 11)],
            "blob": ("%x" % (i * 2654435761 % 2**32)) * (1 + i % 6)}


def build(n, keep_every, seed):
    """n dicts and strings; all but every keep_every-th deleted again."""
    objs = [value(i) for i in range(seed, seed + n)]
    strs = ["s%09d" % i * (1 + i % 9) for i in range(seed, seed + n)]
    kept = {i: (objs[i - seed], strs[i - seed]) for i in range(seed, seed + n)
            if (i * 7919) % keep_every == 0}
    del objs, strs
    gc.collect()
    return kept


def verify(kept, where, changed=()):
    for i, (d, s) in kept.items():
        want = value(i)
        if i in changed:
            want["name"] = "changed-%07d" % i
        if d != want or s != "s%09d" % i * (1 + i % 9):
            raise SystemExit("%s: object %d corrupted: %r / %r" % (where, i, d, s[:40]))


def digest(kept):
    h = hashlib.sha256()
    for i in sorted(kept):
        d, s = kept[i]
        h.update(repr(sorted(d.items())).encode())
        h.update(s.encode())
    return h.hexdigest()[:16]


def fork_round(kept, label):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            verify(kept, "child after fork")
            changed = set(list(kept)[::3])
            for i in changed:
                kept[i][0]["name"] = "changed-%07d" % i
            more = build(20000, 8, 10**7)
            compact()
            report("child")
            verify(kept, "child after meshing", changed)
            verify(more, "child, its own objects")
            os.write(w, b"ok")
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - report anything, never return
            os.write(w, ("child failed: %s" % e).encode())
            os._exit(1)
    os.close(w)
    msg = os.read(r, 1000).decode()
    os.close(r)
    _, st = os.waitpid(pid, 0)
    ok = os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
    print("%s: child %s, exit %s" % (label, msg or "said nothing", "0" if ok else "status %d" % st))
    verify(kept, "parent after the child exited")


def square_len(i):
    d, s = KEPT[i]
    return d["id"] * 3 + len(s) + len(d["blob"])


KEPT = {}


def main():
    mode = sys.argv[1]
    kept = build(60000, 10, 0)
    compact()
    report("parent")
    if _ctl is not None and stat("stats.mesh_count") == 0:
        raise SystemExit("nothing was meshed")
    verify(kept, "parent after meshing")
    print("kept %d objects, digest %s" % (len(kept), digest(kept)))
    if mode == "fork":
        fork_round(kept, "fork from the main thread")
        # fork from a thread while the main thread builds and meshes more
        stop = threading.Event()

        def churn():
            while not stop.is_set():
                build(5000, 10, 5 * 10**6)
                compact()

        t = threading.Thread(target=churn)
        t.start()
        try:
            res = []
            f = threading.Thread(target=lambda: res.append(fork_round(kept, "fork from a thread")))
            f.start()
            f.join()
        finally:
            stop.set()
            t.join()
        verify(kept, "parent at the end")
        print("digest %s" % digest(kept))
    elif mode == "pool":
        import multiprocessing as mp
        global KEPT
        KEPT = kept
        keys = sorted(kept)
        with mp.get_context("fork").Pool(3) as pool:
            got = pool.map(square_len, keys, chunksize=500)
        want = [square_len(i) for i in keys]
        print("pool map: %d results, %s" % (len(got), "all correct" if got == want else "WRONG"))
        more = build(20000, 9, 3 * 10**6)
        compact()
        with mp.get_context("fork").Pool(2) as pool:
            got = pool.map(square_len, keys[::7])
        print("second pool after more meshing: %s" % ("all correct" if got == [square_len(i) for i in keys[::7]] else "WRONG"))
        verify(more, "parent, second batch")
        report("parent-end")


main()
