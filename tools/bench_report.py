"""The table tools/bench.py prints, from the results it also writes to build/bench.json.
Beside our figures: MicroOcpp's, measured on 64-bit x86_64 Linux (from the issue), and the
targets. Every figure is a measurement to compare, never a pass/fail verdict."""
import subprocess

W = 100
OCPP_BASE = {
    "idle": "MicroOcpp 12,751 B; target <= 12.7 KB",
    "peak": "MicroOcpp 15,532 B (3 tx x 60 MV + 100 HB)",
    "peak_gc": "MicroOcpp 23,665 B once GetConfiguration answered; target <= 23.7 KB",
    "after": "MicroOcpp 13,159 B after the session",
    "heap": "target: completes at 64k",
    "code": "MicroOcpp 158 KB machine code; target all .mpy <= 60 KB",
}


def git_state(root):
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [ln[3:] for ln in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "changed_files": len(dirty),
            "changed": dirty[:80]}


def n(v, unit=" B"):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%.1f" % v) + unit if v < 100 else "{:,.0f}".format(v) + unit
    return "{:,}".format(v) + unit


class Table:
    def __init__(self):
        self.lines = []

    def head(self, text):
        self.lines += ["", text, "-" * min(W, len(text))]

    def row(self, label, value="", note=""):
        line = "  %-56s %14s" % (label, value)
        if note:
            line += "  " + note
        self.lines.append(line)

    def text(self, s):
        self.lines.append("  " + s)


def render(r):
    t = Table()
    rt = r.get("runtime", {})
    g = r.get("git", {})
    t.lines.append("OCPP 1.6J charge point: `make bench` (numbers, not pass/fail)")
    t.lines.append("Runtime: %s, %d-bit unix port, GC block %s B." % (
        rt.get("version", "?").split(";")[-1].strip(), 8 * rt.get("word_bytes", 8),
        rt.get("gc_block")))
    t.lines.append("All heap figures are on this 64-bit unix port: a 32-bit MCU uses roughly half.")
    t.lines.append("Code is loaded from .mpy into the heap (not frozen: freezing moves bytecode to"
                   " flash).")
    t.lines.append("git %s with %s files changed locally (see build/bench.json)." % (
        g.get("commit"), g.get("changed_files")))
    _code(t, r)
    _heap(t, r)
    _alloc(t, r)
    _soak(t, r)
    _cpu(t, r)
    for k, v in sorted(r.get("errors", {}).items()):
        if k != "session at 64k":  # shown in its row
            t.lines.append("ERROR in %s: %s" % (k, v))
    t.lines.append("")
    t.lines.append("Whole run: %s s (knobs: %s). JSON: build/bench.json" % (
        r.get("elapsed_s"), " ".join("%s=%s" % kv for kv in sorted(r["knobs"].items()))))
    return "\n".join(t.lines)


def _code(t, r):
    c = r.get("code")
    if not c:
        return
    t.head("1. Code: .mpy files of build/ and the heap their import costs (64-bit unix port)")
    t.text("An import's heap cost includes what it imports that was not loaded before it.")
    t.text("%-34s %-9s %10s %16s" % ("module (import order)", "group", ".mpy B", "import heap B"))
    files = {f["module"]: f for f in c["files"]}
    for name in c["import_order"] + [f["module"] for f in c["files"] if f["group"] == "entry"]:
        f = files[name]
        err = ("  (" + f["import_error"][:40] + ")") if f.get("import_error") else ""
        t.text("%-34s %-9s %10s %16s%s" % (name, f["group"], n(f["mpy_bytes"], ""),
                                          n(f["import_heap"], ""), err))
    groups = {}
    for f in c["files"]:
        s = groups.setdefault(f["group"], [0, 0, 0, 0])
        s[0] += f["mpy_bytes"] or 0
        s[1] += f["import_heap"] or 0
        s[2] += 1
        s[3] += f.get("mpy_o3_bytes") or 0
    names = {"lib": "library lib/ocpp", "firmware": "firmware: charger, hal/, settings, ...",
             "board": "boards/ (all; a device ships one)", "entry": "main.py (run, not imported)",
             "host": "host-only: console, simmachine/"}
    t.text("")
    t.text("%-40s %5s %9s %9s %14s" % ("totals", "files", ".mpy B", "-O3 B", "import heap B"))
    for grp in ("lib", "firmware", "board", "entry", "host"):
        if grp in groups:
            s = groups[grp]
            t.text("%-40s %5d %9s %9s %14s" % (names[grp], s[2], n(s[0], ""), n(s[3], ""),
                                              n(s[1], "")))
    dev = sum(s[0] for k, s in groups.items() if k != "host")
    t.row("all device .mpy (everything but host-only)", n(dev), OCPP_BASE["code"])
    t.row("  the same compiled -O3 (make mpy MPY_OPT=-O3)",
          n(sum(s[3] for k, s in groups.items() if k != "host")), "no line numbers, no asserts")
    for arch, board in (("xtensawin", "an ESP32"), ("armv6m", "a Pico W")):
        d = sum((f["mpy_arch_bytes"].get(arch) or 0) - (f["mpy_bytes"] or 0)
                for f in c["files"] if f.get("mpy_arch_bytes"))
        if d:
            t.row("  the same, the native module compiled for %s" % arch, n(dev + d), board)
    t.row("all .mpy under build/ incl. host-only", n(sum(s[0] for s in groups.values())))
    t.row("heap in use before our imports (interpreter, script)", n(c["import_base"]))
    if c.get("stale_mpy"):
        t.text("(%d stale .mpy in build/ without a source were not counted)" % c["stale_mpy"])


def _mem(s, key):
    m = s.get(key) or {}
    return m.get("mem", m)


def _heap(t, r):
    t.head("2. Heap of the firmware: tools/sim --mpy vs tools/csms.py (64-bit unix port)")
    s, i1 = r.get("session") or {}, r.get("idle_1c") or {}
    idle, before, after = _mem(s, "idle"), _mem(s, "before_getconf"), _mem(s, "after")
    code = idle.get("code")
    t.text("state = heap in use after gc.collect() minus `code` (heap in use once everything is"
           " imported,")
    t.text("before the charger exists). 3 connectors unless said otherwise.")
    t.text("sim = the simulator's own objects in it (simulated EVs, contactors, CT clamps, reader"
           " chip,")
    t.text("the console's reader, the sampler), measured as each is made; absent on a board. The")
    t.text("fake machine's Pin/ADC/PWM objects stay in the rest (0.7 KB a connector; C on a board).")
    t.row("code: heap after imports (firmware-measured)", n(code),
          "incl. the host-only modules (section 1)")

    def state(label, m, note=""):
        t.row(label, n(m["alloc"] - m["code"]), note)
        if m.get("sim") is not None:
            t.row("  of which sim / the rest (engine, hal, charger)", "%s / %s" % (
                n(m["sim"], ""), n(m["alloc"] - m["code"] - m["sim"], "")))

    if i1.get("idle"):
        state("idle after boot, state, 1 connector", _mem(i1, "idle"), OCPP_BASE["idle"])
    if idle:
        state("idle after boot, state, 3 connectors", idle)
    if after:
        state("after the session, state", after, OCPP_BASE["after"])
    st = ((r.get("alloc") or {}).get("stack") or {}).get("per_message", {})
    if st.get("engine state") is not None:
        t.row("engine alone: state, booted, 1 connector, 1 tx open", n(st["engine state"]),
              "in-process, no firmware/sim")
    es = r.get("engine_session") or {}
    if es.get("code"):
        t.text("engine alone (lib/ocpp, in-process, 1 connector), the standard session: %d tx x %d"
               % (es["tx"], es["mv"]))
        t.text("MeterValues (4 measurands), %d Heartbeats, SendLocalList of %d, GetConfiguration"
               % (es["hb"], es["local_list"])
               + ("; gc.threshold(heap/32) as firmware/main.py:" if es.get("gc_threshold")
                  else ":"))
        t.row("  state: idle after boot", n(es["idle"]), OCPP_BASE["idle"])
        t.row("  state: after the transactions", n(es["after transactions"]))
        t.row("  state: after SendLocalList / GetConfiguration", "%s / %s" % (
            n(es["after SendLocalList"], ""), n(es["after GetConfiguration"], "")),
            OCPP_BASE["after"])
        if es.get("min_heap_kb"):
            t.row("  smallest -X heapsize completing it", "%dk" % es["min_heap_kb"])
            t.row("  minus code: peak live state + fragmentation",
                  n(es["min_heap_kb"] * 1024 - es["code"]), OCPP_BASE["peak_gc"])
        if es.get("min_heap_tx_kb"):
            t.row("  the transactions and Heartbeats alone: smallest heap", "%dk" %
                  es["min_heap_tx_kb"])
            t.row("  minus code: peak live state + fragmentation",
                  n(es["min_heap_tx_kb"] * 1024 - es["code"]), OCPP_BASE["peak"] +
                  "; target <= 15.5 KB")
    elif es.get("error"):
        t.text("engine alone, standard session: ERROR " + es["error"][:80])
    if before:
        t.row("peak allocated incl. garbage (50 ms sampler, session)", n(after.get("peak")),
              "%d collections ran: not a live peak" % after.get("drops", 0))
    mh = r.get("min_heap") or {}
    if mh:
        kb = mh.get("kb")
        t.row("smallest -X heapsize completing a session (1 KB steps)",
              "%sk" % kb if kb else "> 8 MB", OCPP_BASE["heap"])
        if mh.get("largest_failing_kb") and kb and mh["largest_failing_kb"] > kb:
            t.row("  but a larger heap failed once (collector timing)",
                  "%dk" % mh["largest_failing_kb"], "probes: " + " ".join(
                      "%s%s" % (k, "+" if v == "completes" else "-")
                      for k, v in mh["tried"].items()))
        t.text("  = peak live heap incl. code and fragmentation; the shortened session for the")
        t.text("  bisection: " + mh["session"])
        if kb and code:
            t.row("  minus code: peak live state + fragmentation", n(kb * 1024 - code),
                  OCPP_BASE["peak_gc"])
    s64 = r.get("session_64k")
    err64 = r.get("errors", {}).get("session at 64k")
    t.row("standard session at -X heapsize=64k", "completes" if s64 else "fails")
    if err64:
        t.text("  " + err64.replace("Failed: ", "")[:W - 4])
    if s.get("meter_values"):
        mv = s["meter_values"]
        t.row("MeterValues sent per transaction (4 measurands, 1 s)",
              "/".join(str(v) for v in mv.values()), "%d transactions" % len(mv))
        t.row("Heartbeats sent (HeartbeatInterval 1 s): during tx / total",
              "%d / %d" % (s["hb_during_tx"], s["heartbeats"]),
              "skipped while other CALLs keep the link busy")
        t.row("StatusNotifications / all CALLs from the charge point",
              "%d / %d" % (s["status_notifications"], s["calls"]))
        t.row("GetConfiguration: keys / answer bytes", "%d / %d" % (
            s["getconf_keys"], s["getconf_bytes"]))
        t.row("session duration", n(s.get("elapsed_s"), " s"))
    t.text("allocation rates (micropython.mem_total(): every byte allocated, garbage included):")
    if None not in (before.get("total"), idle.get("total"), before.get("t"), idle.get("t")):
        t.row("  firmware during the session, 3 connectors", n(
            (before["total"] - idle["total"]) / (before["t"] - idle["t"]), " B/s"))
    if i1.get("idle_later") and None not in (_mem(i1, "idle").get("t"),
                                             _mem(i1, "idle_later").get("total")):
        a, b = _mem(i1, "idle"), _mem(i1, "idle_later")
        t.row("  firmware at idle, 1 connector", n((b["total"] - a["total"]) / (b["t"] - a["t"]),
                                                   " B/s"), "sim world + hal + console + engine")
    eng = st.get("idle B/s")
    if eng is not None:
        t.row("  engine alone at idle, 1 transaction open (in-process)", n(eng, " B/s"))


def _alloc(t, r):
    a = r.get("alloc") or {}
    st, rp = (a.get("stack") or {}).get("per_message", {}), (a.get("rpc") or {}).get(
        "per_message", {})
    if not st and not rp:
        return
    k = (a.get("stack") or a.get("rpc")).get("k")
    t.head("3. Allocation per message: gc.disable(), mean of %s, instant in-process peer (64-bit)"
           % k)
    t.text("%-48s %12s %14s   %s" % ("", "whole stack", "no ws framing", "target"))
    for key, label in (("Heartbeat", "Heartbeat (cp.heartbeat())"),
                       ("MeterValues", "MeterValues, 4 measurands (sample+queue+send)"),
                       ("GetConfiguration", "GetConfiguration in, all keys (rpc.feed)"),
                       ("GetConfiguration (via stream)", "GetConfiguration in, via ws.recv"),
                       ("outbox idle round", "one idle round of the outbox (wake, sleep)")):
        tgt = "<= 1 KB" if key in ("Heartbeat", "MeterValues") else ""
        t.text("%-48s %12s %14s   %s" % (label, n(st.get(key)), n(rp.get(key)), tgt))
    t.text("sizes: GetConfiguration answer %s, one meterValue element %s. The fake peer's own"
           % (n(st.get("GetConfiguration answer bytes")),
              n(st.get("MeterValues meterValue bytes"))))
    t.text("allocations are subtracted; the first 3 messages of each kind warm up, uncounted.")


def _soak(t, r):
    s = r.get("soak")
    if not s:
        return
    t.head("4. Soak: %s messages in-process (Heartbeat / MeterValues / GetConfiguration in, "
           "mixed)" % n(s.get("n"), ""))
    if "error" in s:
        t.text("failed: " + s["error"])
        return
    blk = r.get("runtime", {}).get("gc_block", 32)
    mi = s.get("meminfo", {})
    a, b = mi.get("soak-start", {}), mi.get("soak-end", {})
    t.row("heap in use after gc.collect(): end - start", n(s["growth"]), "target 0 B")
    t.row("heap in use at start / end", "%s / %s" % (n(s["start"], ""), n(s["end"], "")))
    t.row("largest free block at start / end (-X heapsize=%dk)" % s["heap_kb"],
          "%s / %s" % (n(a.get("max_free_blocks", 0) * blk, ""),
                       n(b.get("max_free_blocks", 0) * blk, "")), "bytes (mem_info 'max free sz')")
    t.row("smallest heap for the in-process engine (short soak)", "%sk" % s["inproc_min_heap_kb"],
          "library only, no firmware")
    t.row("time, CALLs answered / GetConfiguration answered",
          "%.1f s" % (s["ms"] / 1000), "%d / %d, still queued %d" % (
              s["calls"], s["answers"], s["queued"]))


def _cpu(t, r):
    c = r.get("cpu_mp") or {}
    if c:
        t.head("5. CPU on MicroPython: one CALL round trip through the whole stack, in-process")
        if r.get("loadavg"):
            t.text("load average before this phase: %.2f (other work skews these)"
                   % r["loadavg"][0])
        t.text("%-30s %12s %12s %10s %8s" % ("", "engine us", "json floor", "peer us", "ratio"))
        for mode, label in (("nogc", "collector off"), ("gc", "collector on")):
            m = c.get(mode) or {}
            if "error" in m:
                t.text("%s: failed: %s" % (label, m["error"]))
                continue
            for kind, v in sorted(m.get("round_trip", {}).items()):
                t.text("%-30s %12.1f %12.1f %10.1f %8.1f" % (
                    "%s, %s" % (kind, label + (" %sk" % m["heap_kb"] if mode == "gc" else "")),
                    v["us"], v["floor_us"], v["peer_us"], v["ratio"]))
        t.text("floor = json.dumps(CALL) + json.loads(answer) of the same frames; target ratio"
               " <= 2. MicroOcpp:")
        t.text("~0.21 ms CPU per transaction cycle (other unit: context only). n = %s" % (
            (c.get("nogc") or {}).get("n")))
    p = r.get("cpython") or {}
    if p:
        t.head("6. CPU on CPython: back-to-back Heartbeats to tools/csms.py --quiet, loopback")
        t.text("%-30s %10s %14s %16s %10s" % ("", "calls/s", "client us/call", "csms us/call",
                                              "csms lines"))
        for k in ("ours", "mobilityhouse"):
            v = p.get(k) or {}
            if "error" in v:
                t.text("%s: failed: %s" % (k, v["error"]))
                continue
            t.text("%-30s %10.0f %14.0f %16.0f %10d" % (
                k + " (n=%d)" % v["n"], v["calls_per_s"], v["cpu_us_per_call"],
                v["csms_cpu_us_per_call"], v["csms_output_lines"]))
        o, m = p.get("ours", {}), p.get("mobilityhouse", {})
        if "calls_per_s" in o and "calls_per_s" in m:
            t.row("ours / mobilityhouse: calls per second (wall)",
                  "%.2fx" % (o["calls_per_s"] / m["calls_per_s"]), "target >= 10x")
            t.row("ours / mobilityhouse: client CPU per call, inverse",
                  "%.2fx" % (m["cpu_us_per_call"] / o["cpu_us_per_call"]))
            t.text("csms us/call = the central system's CPU per call over the run (mobilityhouse"
                   " server,")
            t.text("validating each message); csms lines = its output during the run (--quiet:"
                   " none per message).")
            if o["csms_cpu_us_per_call"] > o["cpu_us_per_call"]:
                t.text("The central system needs more CPU per call than our client: it is the"
                       " bottleneck, so")
                t.text("calls/s cannot show a 10x difference; the client CPU per call is the"
                       " comparison to read.")
