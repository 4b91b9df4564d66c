"""Sessions of the real firmware for tools/bench.py: tools/sim --mpy (the MicroPython unix port
running the .mpy files of build/) against tools/csms.py over loopback, driven through the
simulator's console (plug / card / unplug / status / mem) and the central system's commands.

session(): boot, ChangeConfiguration (4 measurands, MeterValueSampleInterval=1,
HeartbeatInterval=1), a transaction on every connector in parallel until each has sent `mv`
MeterValues, Heartbeats until `heartbeats` were sent in all (the engine skips a Heartbeat while
other messages keep the link busy, so few go out during the transactions), then a full
GetConfiguration. With mem=True the `mem` command reads the heap at each stage (OCPP_MEMSTAT=1
runs the firmware's peak sampler). A session that does not complete raises Failed.

min_heap(): the smallest -X heapsize (1 KB steps) at which a shortened session completes,
by bisection with two probes at a time."""
import json
import os
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests_host"))
from harness import Csms, Sim  # noqa: E402  (stdlib-only helpers shared with the tests)

MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"


class Failed(Exception):
    pass


class MemSim(Sim):
    def mem(self, reset=False, timeout=10):
        """Send `mem` and return its figures (a dict; "t": time.monotonic() of the answer)."""
        self.send("mem reset" if reset else "mem")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                raw = self._q.get(timeout=0.2)
            except Exception:  # queue.Empty
                self.check()
                continue
            if raw is None:
                self._q.put(None)
                self.check()
                raise Failed("sim exited")
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "mem" in obj:
                return dict(obj["mem"], t=time.monotonic())
            self.other_stdout.append(raw.rstrip("\n"))
        raise Failed("no answer to `mem`")

    def check(self):
        """Raise Failed when the firmware ran out of heap or exited. The unix port prints an
        uncaught exception on stdout: the lines not yet read are looked at too."""
        alive = self.alive  # before reading the output: all of it is written once it exited
        if not alive:
            time.sleep(0.2)  # the reader thread's last lines
        err = "\n".join([self.stderr_text()] + self.other_stdout + [
            x for x in list(self._q.queue) if isinstance(x, str)])
        if "MemoryError" in err:
            line = [ln for ln in err.splitlines() if "MemoryError" in ln][0]
            raise Failed(line.strip()[:120])
        if not alive:
            raise Failed("sim exited with %s: %s" % (self.proc.poll(), err.strip()[-200:]))


def _wait(sim, pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        sim.check()
        if pred():
            return
        if time.monotonic() > deadline:
            raise Failed("timed out waiting for " + what)
        time.sleep(0.25)


def _status(sim):
    try:
        return sim.status(timeout=5)
    except AssertionError:
        sim.check()
        raise Failed("no status")


def session(heap=None, connectors=3, mv=60, heartbeats=100, hb_wait_s=120, mem=True,
            cp="BENCH", workdir=None, idle_only=False):
    t_start = time.monotonic()
    out = {"heap": heap, "connectors": connectors}
    env = {"OCPP_MEMSTAT": "1"} if mem else {}
    with Csms("--ping-interval", "0", workdir=workdir) as csms, MemSim(
        csms.url, cp, connectors=connectors, heap=heap, extra_args=["--mpy"], env=env,
        workdir=workdir,
    ) as sim:
        stage = "start-up and boot"  # named in the failure, for where the heap ran out
        try:
            rx = lambda action: csms.rx_calls(action, cp=cp)  # noqa: E731
            want = set(range(connectors + 1))
            _wait(sim, lambda: want <= {m[3]["connectorId"] for m in rx("StatusNotification")},
                  30, "boot and the first StatusNotifications")
            time.sleep(0.5)
            if mem:
                out["idle"] = sim.mem(reset=True)
            if idle_only:
                time.sleep(5)  # the allocation rate at idle
                out["idle_later"] = sim.mem()
                return out
            stage = "ChangeConfiguration"
            for key, value in (("MeterValuesSampledData", MEASURANDS),
                               ("MeterValueSampleInterval", "1"), ("HeartbeatInterval", "1")):
                r = csms.call(cp, "ChangeConfiguration", {"key": key, "value": value})
                if r.get("status") != "Accepted":
                    raise Failed("ChangeConfiguration %s: %s" % (key, r))
            stage = "the transactions"
            for c in range(1, connectors + 1):
                sim.send("plug %d" % c)
                sim.send("card %d BENCH%d" % (c, c))

            def charging():
                s = _status(sim)
                return all(x["status"] == "Charging" and x["transaction"] for x in s["connectors"])

            _wait(sim, charging, 30, "Charging on every connector")

            def per_tx():
                n = {}
                for m in rx("MeterValues"):
                    n[m[3].get("transactionId")] = n.get(m[3].get("transactionId"), 0) + 1
                return n

            t_tx = time.monotonic()
            _wait(sim, lambda: len(per_tx()) >= connectors and min(per_tx().values()) >= mv,
                  mv * 2 + 30, "%d MeterValues per transaction" % mv)
            for c in range(1, connectors + 1):
                sim.send("card %d BENCH%d" % (c, c))
            _wait(sim, lambda: len(rx("StopTransaction")) >= connectors
                  and _status(sim)["queued"] == 0, 30, "the StopTransactions")
            out["tx_s"] = round(time.monotonic() - t_tx, 1)
            out["hb_during_tx"] = len(rx("Heartbeat"))
            stage = "the Heartbeats"
            for c in range(1, connectors + 1):
                sim.send("unplug %d" % c)
            deadline = time.monotonic() + hb_wait_s
            while len(rx("Heartbeat")) < heartbeats and time.monotonic() < deadline:
                sim.check()
                time.sleep(0.5)
            if mem:
                out["before_getconf"] = sim.mem()
            stage = "GetConfiguration"
            r = csms.call(cp, "GetConfiguration", {})
            out["getconf_keys"] = len(r.get("configurationKey", []))
            out["getconf_bytes"] = len(json.dumps(r, separators=(",", ":")))
            time.sleep(0.5)
            if mem:
                out["after"] = sim.mem()
            sim.check()
            out["meter_values"] = per_tx()
            out["heartbeats"] = len(rx("Heartbeat"))
            out["status_notifications"] = len(rx("StatusNotification"))
            out["calls"] = len(rx(None))
            bad = [ln["msg"] for ln in csms.lines if ln.get("dir") == "tx" and ln.get("cp") == cp
                   and isinstance(ln.get("msg"), list) and ln["msg"][0] == 4]
            if bad:
                raise Failed("the central system answered CALLERROR: %s" % bad[:2])
            stage = "quit"
            rc = sim.quit()
            if rc != 0:
                raise Failed("sim exit code %s" % rc)
        except AssertionError as e:  # a harness wait that gave up
            try:
                sim.check()
            except Failed as f:
                e = f
            raise Failed("during %s: %s" % (stage, str(e).splitlines()[0])) from None
        except Failed as e:
            raise Failed("during %s: %s" % (stage, e)) from None
    out["elapsed_s"] = round(time.monotonic() - t_start, 1)
    return out


def probe(kb, workdir=None, mv=10):
    """True when the shortened session completes at -X heapsize=<kb>k."""
    try:
        session("%dk" % kb, mv=mv, heartbeats=0, hb_wait_s=0, mem=False, cp="PROBE%d" % kb,
                workdir=workdir)
        return True, None
    except Failed as e:
        return False, str(e)


def min_heap(lo=8, hi=256, workdir=None, mv=10, log=None):
    """Smallest heap in KB at which probe() passes, assuming failure at lo: ternary search,
    two probes at a time. hi doubles while it fails (up to 8 MB)."""
    tried = {}

    def run(kbs):
        res = {}

        def one(kb):
            res[kb] = probe(kb, workdir, mv)

        threads = [threading.Thread(target=one, args=(kb,)) for kb in kbs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for kb in kbs:
            tried[kb] = res[kb]
            if log:
                log("  heap %dk: %s" % (kb, "completes" if res[kb][0] else res[kb][1]))
        return [res[kb][0] for kb in kbs]

    while not run([hi])[0]:
        lo, hi = hi, hi * 2
        if hi > 8192:
            return None, tried
    while hi - lo > 1:
        a = lo + max(1, (hi - lo) // 3)
        b = lo + max(a - lo + 1, 2 * (hi - lo) // 3)
        kbs = [a] if b >= hi else [a, b]
        ok = run(kbs)
        if ok[0]:
            hi = a
        elif len(ok) > 1 and ok[1]:
            lo, hi = a, b
        else:
            lo = kbs[-1]
    return hi, tried


if __name__ == "__main__":  # quick manual check: python tools/bench_session.py [KB]
    if len(sys.argv) > 1:
        print(probe(int(sys.argv[1])))
    else:
        print(json.dumps(session(mv=5, heartbeats=10, hb_wait_s=20), indent=1))
