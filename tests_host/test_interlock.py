"""The relay interlock (firmware/hal/relay.py), property-based with hypothesis: in no sequence of
events does the contactor close without an authorised transaction, the EV in state C/D, no fault,
the cable locked and no trip; it opens as soon as one of them fails. First on the interlock alone,
then on the whole charger (charger.py + the hal on the fake `machine` + the fake central system)
driven like the simulator's console: plug, unplug, the EV pausing, cards, faults, a welded
contact, remote stops, resets."""
import asyncio
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwsupport
from hal.pilot import duty_for
from hal.relay import Contactor, Interlock
from hwsupport import FakePin

# ---- the interlock alone -----------------------------------------------------------------------


class StubPilot:
    def __init__(self, log):
        self.state = None
        self.offered = 0
        self.log = log

    def offer(self, amps):
        if amps != self.offered:
            self.log.append(("offer", amps))
        self.offered = amps


class LoggingPin(FakePin):
    def __init__(self, log):
        super().__init__()
        self.log = log

    def value(self, v=None):
        if v is not None:
            self.log.append(("pin", 1 if v else 0))
        return super().value(v)


class StubLock:
    locked = False


EVENTS = st.one_of(
    st.tuples(st.just("state"), st.sampled_from(["A", "B", "C", "D", "E", "F", None])),
    st.tuples(st.just("authorised"), st.booleans()),
    st.tuples(st.just("fault"), st.sampled_from([None, None, "GroundFailure",
                                                 "PowerSwitchFailure"])),
    st.tuples(st.just("locked"), st.booleans()),
    st.tuples(st.just("trip"), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(EVENTS, max_size=40), active=st.sampled_from([0, 1]),
       with_lock=st.booleans())
def test_interlock_closes_only_when_everything_allows(events, active, with_lock):
    log = []
    pin = LoggingPin(log)
    contactor = Contactor(pin, active)
    pilot = StubPilot(log)
    lock = StubLock() if with_lock else None
    il = Interlock(contactor, pilot, 16, lock)
    assert pin.v == 1 - active and not contactor.closed  # open from the start
    tripped = False
    for kind, value in events:
        if kind == "state":
            pilot.state = value
        elif kind == "locked":
            if lock:
                lock.locked = value
        elif kind == "trip":
            il.trip()
            tripped = True
        else:
            setattr(il, kind, value)
        del log[:]
        was = contactor.closed
        closed = il.update()
        allowed = (il.authorised and not il.fault and not tripped
                   and (lock is None or lock.locked))
        assert closed == contactor.closed == (allowed and pilot.state in ("C", "D"))
        assert pin.v == (active if closed else 1 - active)
        assert pilot.offered == (16 if allowed else 0)
        if was and not closed and ("offer", 0) in log:
            # Opening comes before the pilot stops offering: the contactor never waits on it.
            assert log.index(("pin", 1 - active)) < log.index(("offer", 0))
        if tripped:
            assert not closed and pilot.offered == 0


def test_trip_is_latched():
    pin = FakePin()
    pilot = StubPilot([])
    pilot.state = "C"
    il = Interlock(Contactor(pin), pilot, 32)
    il.authorised = True
    assert il.update() and pin.v == 1 and pilot.offered == 32
    il.trip()
    assert pin.v == 0 and pilot.offered == 0
    il.authorised = True
    assert not il.update() and pin.v == 0


def test_weld_and_pull_in_failures_are_detected(monkeypatch):
    from hal import relay

    clock = [0]
    monkeypatch.setattr(relay, "ticks_ms", lambda: clock[0])
    coil, aux = FakePin(), FakePin(1)  # the auxiliary contact reads 0 when closed
    c = Contactor(coil, 1, aux, 0)
    clock[0] = 1000
    assert c.failure() is None  # open and reads open
    c.set(True)
    clock[0] += 100
    assert c.failure() is None  # still moving
    clock[0] += 300
    assert c.failure() == "PowerSwitchFailure"  # commanded closed, reads open: no pull-in
    aux.v = 0
    assert c.failure() is None
    c.set(False)
    clock[0] += 400
    assert c.failure() == "PowerSwitchFailure"  # commanded open, still closed: welded


# ---- the whole charger --------------------------------------------------------------------------

COMMANDS = st.one_of(
    st.tuples(st.sampled_from(["plug", "unplug"]), st.sampled_from([1, 2])),
    st.tuples(st.just("ev"), st.sampled_from([1, 2]), st.sampled_from([0, 6, 16, 32])),
    st.tuples(st.just("card"), st.sampled_from([1, 2]), st.sampled_from(["CARD1", "CARD2",
                                                                         "BAD"])),
    st.tuples(st.just("fault"), st.sampled_from([1, 2]),
              st.sampled_from([None, "GroundFailure"])),
    st.tuples(st.just("weld"), st.sampled_from([1, 2])),
    st.tuples(st.just("diode"), st.sampled_from([1, 2])),
    st.tuples(st.just("remote_stop"), st.sampled_from([1, 2])),
    st.tuples(st.just("reset"),),
    st.tuples(st.just("wait"), st.integers(1, 12)),
    st.tuples(st.just("session"), st.sampled_from([1, 2])),  # plug, card, wait: charging
)
# Half of the runs begin with both connectors charging, so that what follows can break it.
SCRIPTS = st.tuples(st.booleans(), st.lists(COMMANDS, min_size=1, max_size=16)).map(
    lambda t: ([("session", 1), ("session", 2)] if t[0] else []) + t[1])


def check_invariant(rig):
    """Whenever a relay pin is driven closed, everything that allows it holds right now."""
    for cid in (1, 2):
        if not rig.relay(cid):
            continue
        port = rig.hw.port(cid)
        tx = rig.cp.connectors[cid].tx
        assert tx is not None and not tx.ended, "closed without a transaction"
        assert rig.charger.energise[cid], "closed without an accepted start"
        assert port.pilot.state in ("C", "D"), "closed in state %s" % port.pilot.state
        assert rig.charger._fault[cid] is None, "closed with a fault"
        assert not port.interlock.tripped, "closed after a trip"
        assert port.lock.locked, "closed unlocked"
        assert port.pilot.offered > 0


async def run_commands(csms, commands):
    rig = hwsupport.Rig(connectors=2)
    await rig.start(csms)
    check = lambda: check_invariant(rig)  # noqa: E731
    for cmd in commands:
        kind, cid = cmd[0], cmd[1] if len(cmd) > 1 else None
        ev = rig.world.ev(cid) if isinstance(cid, int) and kind != "wait" else None
        if kind in ("plug", "unplug"):
            ev.plugged = kind == "plug"
        elif kind == "ev":
            ev.max_a = cmd[2]
        elif kind == "card":
            asyncio.ensure_future(rig.charger.card(cid, cmd[2]))
        elif kind == "fault":
            rig.charger.fault(cid, cmd[2])
        elif kind == "weld":
            ev.welded = not ev.welded
        elif kind == "diode":
            ev.diode = not ev.diode
        elif kind == "remote_stop":
            tx = rig.cp.connectors[cid].tx
            if tx is not None and tx.id is not None:
                asyncio.ensure_future(csms.call("RemoteStopTransaction",
                                                {"transactionId": tx.id}))
        elif kind == "reset":
            asyncio.ensure_future(csms.call("Reset", {"type": "Soft"}))
        elif kind == "session":
            ev.plugged = True
            ev.max_a = 16
            asyncio.ensure_future(rig.charger.card(cid, "CARD%d" % cid))
            await rig.tick(12, check=check)
        await rig.tick(cmd[1] if kind == "wait" else 3, check=check)
        # Three polls are past the debounce: an EV not in state C has the contactor open.
        for i in (1, 2):
            if rig.world.ev(i).state() != "C" or not rig.world.ev(i).diode:
                assert not rig.relay(i), "closed while the EV is in %s" % rig.world.ev(i).state()
    await rig.stop()
    return rig


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=SCRIPTS)
def test_charger_never_closes_without_authorisation(csms, commands, tmp_path):
    from ocpp import store

    store.dir = tempfile.mkdtemp(dir=tmp_path)  # a fresh flash: no journal from the last run
    csms.answers["Authorize"] = lambda p: {"idTagInfo": {
        "status": "Invalid" if p["idTag"] == "BAD" else "Accepted"}}
    asyncio.run(asyncio.wait_for(run_commands(csms, commands), 60))


def test_a_card_session_closes_and_opens_the_relay(csms):
    async def main():
        rig = hwsupport.Rig(connectors=1)
        await rig.start(csms)
        ev = rig.world.ev(1)
        port = rig.hw.port(1)
        check = lambda: check_invariant(rig)  # noqa: E731
        ev.plugged = True
        await rig.until(lambda: rig.cp.connectors[1].status == "Preparing", check=check)
        assert not rig.relay(1) and port.pilot.duty == 65535  # no offer before a card
        asyncio.ensure_future(rig.charger.card(1, "CARD1"))
        await rig.until(lambda: rig.cp.connectors[1].status == "Charging", check=check)
        assert rig.relay(1) and port.lock.locked and port.pilot.duty == duty_for(16)
        # The EV draws the 16 A offered, through the fake CT into the meter (its accuracy is
        # test_meter's business; this machine may be busy enough to disturb the sampling).
        await rig.until(lambda: port.meter.amps[0] > 15, ticks=100, check=check)
        assert abs(port.meter.amps[0] - 16) < 0.8
        ev.max_a = 0  # the EV pauses: back to state B
        await rig.until(lambda: rig.cp.connectors[1].status == "SuspendedEV", check=check)
        assert not rig.relay(1)
        ev.max_a = 16
        await rig.until(lambda: rig.cp.connectors[1].status == "Charging", check=check)
        ev.plugged = False  # unplugged under load
        await rig.tick(3, check=check)
        assert not rig.relay(1)
        await rig.until(lambda: rig.cp.connectors[1].status == "Available", check=check)
        assert not port.lock.locked and port.pilot.duty == 65535
        await rig.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
    stop = csms.of("StopTransaction")[0]
    assert stop["reason"] == "EVDisconnected" and stop["meterStop"] >= 0


def test_energy_stops_counting_when_the_contactor_opens(csms):
    # The register holds the last power between measurements (one a second): the charger
    # measures again when the contactor switches, so no energy is counted once it is open.
    async def main():
        rig = hwsupport.Rig(connectors=1)
        await rig.start(csms)
        ev, port = rig.world.ev(1), rig.hw.port(1)
        ev.plugged = True
        asyncio.ensure_future(rig.charger.card(1, "CARD1"))
        await rig.until(lambda: port.meter.register.power_w > 3000, ticks=300)
        rig.charger.ticks = 1  # the next periodic measurement is 19 ticks away
        ev.max_a = 0  # the EV pauses: back to state B, the contactor opens
        await rig.until(lambda: not rig.relay(1))
        assert port.meter.register.power_w == 0
        wh = port.meter.wh
        await rig.tick(40)
        assert port.meter.wh == wh
        await rig.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_faults_open_the_relay_and_are_reported(csms):
    async def main():
        rig = hwsupport.Rig(connectors=1)
        await rig.start(csms)
        ev, c = rig.world.ev(1), rig.cp.connectors[1]
        ev.plugged = True
        asyncio.ensure_future(rig.charger.card(1, "CARD1"))
        await rig.until(lambda: c.status == "Charging")
        rig.charger.fault(1, "GroundFailure")  # opens at once, no tick needed
        assert not rig.relay(1) and c.status == "Faulted" and c.error_code == "GroundFailure"
        rig.charger.fault(1, None)
        await rig.until(lambda: c.status == "Charging")
        ev.welded = True  # the contacts stick; the charger opens and reads them still closed
        ev.max_a = 0
        await rig.until(lambda: c.error_code == "PowerSwitchFailure")
        assert not rig.relay(1) and c.status == "Faulted"
        ev.welded = False
        await rig.until(lambda: c.error_code == "NoError")
        ev.max_a = 16
        ev.diode = False  # the EV's diode fails: pilot error
        await rig.until(lambda: c.error_code == "EVCommunicationError")
        assert not rig.relay(1)
        ev.diode = True
        await rig.until(lambda: c.status == "Charging")
        await rig.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_lock_failure_keeps_the_relay_open(csms):
    async def main():
        rig = hwsupport.Rig(connectors=1)
        await rig.start(csms)
        lk = rig.board.CONNECTORS[0]["lock"]
        rig.world.motors.pop(lk["motor_a"])  # the motor does not move: the lock stays open
        ev, c = rig.world.ev(1), rig.cp.connectors[1]
        ev.plugged = True
        asyncio.ensure_future(rig.charger.card(1, "CARD1"))
        await rig.until(lambda: c.error_code == "ConnectorLockFailure")
        await rig.tick(10)
        assert not rig.relay(1) and rig.hw.port(1).pilot.offered == 0
        await rig.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_unhandled_exception_trips_every_contactor(csms):
    async def main():
        rig = hwsupport.Rig(connectors=2)
        await rig.start(csms)
        for cid in (1, 2):
            rig.world.ev(cid).plugged = True
            asyncio.ensure_future(rig.charger.card(cid, "CARD%d" % cid))
        await rig.until(lambda: rig.relay(1) and rig.relay(2))

        async def boom():
            raise RuntimeError("bug")

        t = asyncio.ensure_future(boom())
        await asyncio.sleep(0)
        rig.charger._crash(None, {"exception": t.exception(), "future": t, "message": "x"})
        assert not rig.relay(1) and not rig.relay(2)
        assert rig.cp.connectors[1].error_code == "InternalError"
        await rig.tick(5)
        assert not rig.relay(1) and not rig.relay(2) and rig.rebooted == 0
        # The engine itself dying means a reset.
        rig.charger._crash(None, {"exception": None, "future": rig.charger.engine})
        await asyncio.sleep(2.2)
        assert rig.rebooted == 1
        await rig.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_ocpp_reset_opens_and_reboots(csms):
    async def main():
        rig = hwsupport.Rig(connectors=1)
        await rig.start(csms)
        rig.world.ev(1).plugged = True
        asyncio.ensure_future(rig.charger.card(1, "CARD1"))
        await rig.until(lambda: rig.relay(1))
        r = await csms.call("Reset", {"type": "Hard"})
        assert r[2]["status"] == "Accepted"
        await rig.until(lambda: rig.rebooted == 1, ticks=200)
        assert not rig.relay(1) and rig.hw.port(1).interlock.tripped
        await rig.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert csms.of("StopTransaction")[0]["reason"] == "HardReset"


@pytest.mark.parametrize("cid", [1])
def test_unlock_connector_opens_first(csms, cid):
    async def main():
        rig = hwsupport.Rig(connectors=1)
        await rig.start(csms)
        rig.world.ev(1).plugged = True
        asyncio.ensure_future(rig.charger.card(1, "CARD1"))
        await rig.until(lambda: rig.relay(1))
        r = await csms.call("UnlockConnector", {"connectorId": 1})
        assert r[2]["status"] == "Unlocked"
        assert not rig.relay(1) and not rig.world.ev(1).locked
        await rig.tick(5)
        assert not rig.relay(1)
        await rig.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
