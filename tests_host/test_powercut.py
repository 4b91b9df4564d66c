"""Power cuts: the firmware (MicroPython, tools/sim, two connectors) runs sessions while the
central system is up, down (connections refused) and flapping (links dropped); the MicroPython
process is killed with SIGKILL at random moments and started again on the same flash, hundreds of
times. At the end, what the central system received is compared with what happened.

Seeded: POWERCUT_SEED replays a run, POWERCUT_KILLS sets its length (`make soak` runs a long one
with a fresh seed). The summary line gives the figures: kills, sessions, messages checked.

Delivery is at least once: a kill between the central system's answer and the charger's note of
it on flash sends the message again, and tools/csms.py answers a repeated StartTransaction with
the same transactionId, as a real central system should. So a "duplicate" here is what a central
system could not tell from a resend: two DIFFERENT StartTransactions (distinct connectorId,
idTag, meterStart, timestamp) for one session, or two different StopTransactions for one
transaction. Identical resends are counted, not failed."""
import json
import os
import random
import signal
import time

from harness import Csms, Sim

KILLS = int(os.environ.get("POWERCUT_KILLS", "200"))
SEED = int(os.environ.get("POWERCUT_SEED", "20261126"))
ENERGY = "Energy.Active.Import.Register"


def mp_processes(state):
    """pids of MicroPython processes running on this flash folder (cwd = the --state dir)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/cwd" % p) != state:
                continue
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if b"micropython" in f.read():
                    pids.append(int(p))
        except OSError:
            pass
    return pids


def power_cut(sim, state):
    """SIGKILL the MicroPython process (and its launcher), and make sure none is left writing to
    the flash folder before the next boot."""
    killed = 0
    for pid in mp_processes(state):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    sim.kill()
    deadline = time.monotonic() + 5
    while True:
        left = mp_processes(state)
        if not left:
            return killed
        assert time.monotonic() < deadline, "MicroPython still running: %s" % left
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


class Driver:
    """Plays an EV driver at two connectors and an unreliable network, at random."""

    def __init__(self, rng, csms):
        self.rng = rng
        self.csms = csms
        self.serial = 0
        self.presented = set()  # every idTag shown at a reader
        self.down = False

    def boot(self, sim):
        self.session = {1: None, 2: None}  # tag of the session the driver started there
        for cid in (1, 2):  # drivers waiting for the charger to come back
            if self.rng.random() < 0.6:
                self.start(sim, cid)

    def start(self, sim, cid):
        self.serial += 1
        tag = "P%05d" % self.serial
        self.presented.add(tag)
        self.session[cid] = tag
        sim.send("plug %d" % cid)
        sim.send("card %d %s" % (cid, tag))

    def step(self, sim):
        r = self.rng.random()
        cid = self.rng.choice((1, 2))
        if r < 0.07:
            self.down = not self.down
            self.csms.set(refuse=self.down)
            if self.down:
                self.flap()
        elif r < 0.10:
            self.flap()
        elif r < 0.45:
            if self.session[cid] is None:
                self.start(sim, cid)
        elif r < 0.58:
            if self.session[cid] is not None:
                sim.send("card %d %s" % (cid, self.session[cid]))  # the same card stops it
                self.session[cid] = None
        elif r < 0.64:
            sim.send("unplug %d" % cid)  # ends a running transaction: EVDisconnected
            self.session[cid] = None

    def flap(self):
        try:
            self.csms.disconnect("CP1")
        except AssertionError:
            pass  # not connected


def journaled(log):
    """idTags whose StartTransaction the firmware wrote to flash (its log line comes after)."""
    tags = set()
    for line in log.splitlines():
        if "StartTransaction L" in line and " journaled " in line:
            tags.add(line.rsplit("idTag ", 1)[1].rstrip(")"))
    return tags


def clock_s(ts):
    from ocpp import clock

    return clock.parse(ts)


def check(lines, presented, on_flash, register):
    """Compare what the central system received with what happened; returns the figures. With
    the energy register wired (lib/ocpp/register.py), meter values also never go backwards from
    one transaction to the next on a connector, across power cuts."""
    calls, answers = [], {}
    for ln in lines:
        m = ln.get("msg")
        if not isinstance(m, list) or len(m) < 3:
            continue
        if ln["dir"] == "rx" and m[0] == 2 and m[2] in ("StartTransaction", "StopTransaction",
                                                        "MeterValues"):
            calls.append(m)
        elif ln["dir"] == "tx" and m[0] == 3:
            answers[m[1]] = m[2]
    starts = {}  # idTag -> {distinct Start key}
    txids = {}  # Start key -> {transactionId answered}
    tx_of = {}  # transactionId -> Start payload
    for _, uid, action, p in calls:
        if action != "StartTransaction":
            continue
        key = (p["connectorId"], p["idTag"], p["meterStart"], p["timestamp"])
        starts.setdefault(p["idTag"], set()).add(key)
        if uid in answers:
            txids.setdefault(key, set()).add(answers[uid]["transactionId"])
            tx_of[answers[uid]["transactionId"]] = p
    dup = {t: k for t, k in starts.items() if len(k) > 1}
    assert not dup, "one session, several transactions: %s" % dup
    assert all(len(v) == 1 for v in txids.values()), txids
    lost = on_flash - set(starts)
    assert not lost, "StartTransaction journaled but never received: %s" % sorted(lost)
    assert set(starts) <= presented, set(starts) - presented
    assert len(tx_of) == len(starts), "a StartTransaction never answered"
    stops = {}  # transactionId -> {distinct Stop}
    samples = {}  # transactionId -> [(timestamp, Wh)] in the order received
    for _, uid, action, p in calls:
        if action == "StartTransaction":
            continue
        t = p["transactionId"]
        assert t in tx_of, "%s for an unknown transaction: %s" % (action, p)
        if action == "StopTransaction":
            stops.setdefault(t, set()).add(json.dumps(p, sort_keys=True))
            continue
        assert p["connectorId"] == tx_of[t]["connectorId"], p
        for mv in p["meterValue"]:
            for sv in mv["sampledValue"]:
                if sv.get("measurand", ENERGY) == ENERGY:
                    samples.setdefault(t, []).append((mv["timestamp"], int(sv["value"])))
    missing = set(tx_of) - set(stops)
    assert not missing, "transactions never stopped: %s" % sorted(missing)
    two = {t: s for t, s in stops.items() if len(s) > 1}
    assert not two, "a transaction stopped twice, differently: %s" % two
    for t, start in tx_of.items():
        stop = json.loads(next(iter(stops[t])))
        values = [v for _, v in samples.get(t, ())]
        assert values == sorted(values), "meter values went backwards in %d: %s" % (t, values)
        assert start["meterStart"] <= min(values + [stop["meterStop"]]), (start, values)
        assert max(values + [start["meterStart"]]) <= stop["meterStop"], (start, values, stop)
        # Periodic and clock-aligned samples interleave: each is stamped within its second.
        stamps = [clock_s(s) for s, _ in samples.get(t, ())]
        assert all(b >= a - 1 for a, b in zip(stamps, stamps[1:])), stamps
        assert start["timestamp"] <= stop["timestamp"]
    if register:
        last = {}
        for t, start in tx_of.items():  # in the order received: the order they happened
            c = start["connectorId"]
            assert start["meterStart"] >= last.get(c, 0), (t, start, last)
            last[c] = json.loads(next(iter(stops[t])))["meterStop"]
    reasons = {}
    for s in stops.values():
        r = json.loads(next(iter(s))).get("reason", "Local")
        reasons[r] = reasons.get(r, 0) + 1
    distinct = len({json.dumps(c[2:], sort_keys=True) for c in calls})
    return {"transactions": len(tx_of), "messages": len(calls), "resent": len(calls) - distinct,
            "samples": sum(len(v) for v in samples.values()), "reasons": reasons}


def test_power_cuts(tmp_path, capsys):
    rng = random.Random(SEED)
    state = str(tmp_path / "flash")
    t0 = time.monotonic()
    with Csms("--ping-interval", "0", "--heartbeat-interval", "60", workdir=tmp_path) as csms:
        with Sim(csms.url, "CP1", connectors=2, state=state, workdir=tmp_path,
                 extra_args=["--mpy"]) as sim:
            sim.wait_status(lambda s: s["accepted"])
            for k, v in (("MeterValueSampleInterval", "1"), ("ClockAlignedDataInterval", "1"),
                         ("AllowOfflineTxForUnknownId", "true"), ("ConnectionTimeOut", "30")):
                assert csms.call("CP1", "ChangeConfiguration", {"key": k, "value": v})[
                    "status"] == "Accepted"
        driver = Driver(rng, csms)
        on_flash, kills = set(), 0
        for _ in range(KILLS):
            sim = Sim(csms.url, "CP1", connectors=2, state=state, workdir=tmp_path,
                      extra_args=["--mpy"])
            deadline = time.monotonic() + 10
            while not mp_processes(state):  # the launcher has started MicroPython
                assert time.monotonic() < deadline and sim.alive, sim.stderr_text()[-3000:]
                time.sleep(0.005)
            driver.boot(sim)
            # Short lives hit booting, replay and recovery; longer ones let transactions run
            # and meter values pile up.
            life = rng.uniform(0, 0.4) if rng.random() < 0.75 else rng.uniform(2.5, 4.0)
            end = time.monotonic() + life
            while time.monotonic() < end and sim.alive:
                driver.step(sim)
                time.sleep(min(rng.uniform(0.02, 0.3), max(0, end - time.monotonic())))
            assert sim.alive, sim.stderr_text()[-3000:]
            kills += power_cut(sim, state)
            log = sim.stderr_text()
            assert "Traceback" not in log, log[-3000:]
            on_flash |= journaled(log)
        # The power stays on and the central system comes back: everything must arrive.
        csms.set(refuse=False)
        with Sim(csms.url, "CP1", connectors=2, state=state, workdir=tmp_path,
                 extra_args=["--mpy"]) as sim:
            sim.wait_status(lambda s: s["connected"] and s["queued"] == 0, timeout=120)
            time.sleep(0.5)
            log = sim.stderr_text()
        on_flash |= journaled(log)
        assert "Traceback" not in log, log[-3000:]
    wired = os.path.exists(os.path.join(state, "energy.json"))
    figures = check(csms.lines, driver.presented, on_flash, wired)
    assert kills >= KILLS * 0.95, kills
    assert figures["transactions"] >= KILLS // 4, figures
    with capsys.disabled():
        print("\n  power cuts: seed %d, %d SIGKILLs survived in %.0f s; %d sessions presented, %d "
              "transactions, %d transaction messages checked (%d identical resends), %d meter "
              "samples; stop reasons %s; energy register %s"
              % (SEED, kills, time.monotonic() - t0, len(driver.presented),
                 figures["transactions"], figures["messages"], figures["resent"],
                 figures["samples"], figures["reasons"], "persisted" if wired else "not wired"))
