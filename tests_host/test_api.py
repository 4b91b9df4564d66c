"""The seed's example (Zephyr's OCPP sample, in Python) on CPython against the fake central
system: init, open a session, authorize, start, meter values asked through the callback, stop,
close; and the central system's remote start and stop reaching the callback."""
import asyncio

import pytest

from ocpp import api

INFO = {"vendor": "Acme", "model": "Wallbox", "serial": "S-1", "connectors": 2}
CS = {"url": "ws://127.0.0.1:9/ocpp", "cp_id": "CP7"}


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Meter:
    """The integrator's callback: a meter that counts up, and a log of what it was told."""

    def __init__(self):
        self.wh = 1000
        self.asked = []
        self.told = []
        self.started = None

    def __call__(self, reason, connector, value):
        if reason == api.GET_METER_VALUE:
            self.asked.append((connector, value))
            if value == "Energy.Active.Import.Register":
                return self.wh
            return 16.0 if value == "Current.Import" else None
        self.told.append((reason, connector, value))
        if reason == api.START_CHARGING:
            self.started = value
        return True


def test_seed_example_session(csms):
    meter = Meter()

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        assert cp.config.change("MeterValueSampleInterval", "1") == "Accepted"
        assert cp.config.change("MeterValuesSampledData",
                                "Energy.Active.Import.Register,Current.Import") == "Accepted"
        sess = cp.session_open(1)
        assert await sess.authorize("TAG1", 2000) == api.ACCEPTED
        cp.connector_event(1, api.EV_PLUGGED)
        await asyncio.sleep(0.3)  # statuses are reported once stable for 200 ms
        assert await sess.start_transaction(meter.wh, 1, 2000) == api.ACCEPTED
        cp.connector_event(1, api.EV_CHARGING)
        meter.wh = 1234
        await csms.wait_for(lambda: csms.of("MeterValues"), 5)
        meter.wh = 1500
        assert await sess.stop_transaction(meter.wh, 2000) == api.ACCEPTED
        sess.close()
        await csms.wait_for(lambda: cp.connectors[1].reported == ("Finishing", "NoError"))
        await cp.stop()

    run(main())
    assert csms.url == "ws://127.0.0.1:9/ocpp/CP7"
    boot = csms.of("BootNotification")[0]
    assert boot == {"chargePointVendor": "Acme", "chargePointModel": "Wallbox",
                    "chargePointSerialNumber": "S-1"}
    assert csms.of("Authorize") == [{"idTag": "TAG1"}]
    start = csms.of("StartTransaction")[0]
    assert (start["connectorId"], start["idTag"], start["meterStart"]) == (1, "TAG1", 1000)
    mv = csms.of("MeterValues")[0]
    assert mv["transactionId"] == 1 and mv["connectorId"] == 1
    values = {v["measurand"]: v for v in mv["meterValue"][0]["sampledValue"]}
    assert values["Energy.Active.Import.Register"]["value"] == "1234"
    assert values["Energy.Active.Import.Register"]["unit"] == "Wh"
    assert values["Current.Import"]["unit"] == "A"
    assert (1, "Energy.Active.Import.Register") in meter.asked
    stop = csms.of("StopTransaction")[0]
    assert (stop["transactionId"], stop["meterStop"], stop["reason"]) == (1, 1500, "Local")
    statuses = [(p["connectorId"], p["status"]) for p in csms.of("StatusNotification")]
    assert statuses[:3] == [(0, "Available"), (1, "Available"), (2, "Available")]
    assert (1, "Preparing") in statuses and (1, "Charging") in statuses
    assert statuses.index((1, "Charging")) > statuses.index((1, "Preparing"))
    assert statuses[-1] == (1, "Finishing")
    # Order on the wire: Charging is never reported before StartTransaction went out.
    acts = csms.actions()
    charging = [i for i, (a, p) in enumerate(csms.calls)
                if a == "StatusNotification" and p["status"] == "Charging"][0]
    assert acts.index("StartTransaction") < charging


def test_remote_start_and_stop_reach_the_callback(csms):
    meter = Meter()

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        r = await csms.call("RemoteStartTransaction", {"idTag": "R1", "connectorId": 2})
        assert r[2] == {"status": "Accepted"}
        await csms.wait_for(lambda: meter.started is not None)
        sess = meter.started
        assert sess.connector == 2 and sess.id_tag == "R1"
        # A second remote start on the same connector is refused while it is taken.
        r = await csms.call("RemoteStartTransaction", {"idTag": "R2", "connectorId": 2})
        assert r[2] == {"status": "Rejected"}
        cp.connector_event(2, api.EV_PLUGGED)
        assert await sess.wait_plugged()
        assert await sess.start_transaction(meter.wh, 2, 2000) == api.ACCEPTED
        txid = cp.connectors[2].tx.id
        r = await csms.call("RemoteStopTransaction", {"transactionId": txid + 100})
        assert r[2] == {"status": "Rejected"}
        r = await csms.call("RemoteStopTransaction", {"transactionId": txid})
        assert r[2] == {"status": "Accepted"}
        await csms.wait_for(lambda: csms.of("StopTransaction"))
        await cp.stop()
        return txid

    txid = run(main())
    assert (api.START_CHARGING, 2, meter.started) in meter.told
    assert (api.STOP_CHARGING, 2, "Remote") in meter.told
    start = csms.of("StartTransaction")[0]
    assert start["idTag"] == "R1" and start["connectorId"] == 2
    stop = csms.of("StopTransaction")[0]
    assert stop["transactionId"] == txid and stop["reason"] == "Remote"


def test_remote_start_authorizes_first_when_configured(csms):
    meter = Meter()
    csms.answers["Authorize"] = {"idTagInfo": {"status": "Blocked"}}

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.config.change("AuthorizeRemoteTxRequests", "true")
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        r = await csms.call("RemoteStartTransaction", {"idTag": "BAD"})
        assert r[2] == {"status": "Accepted"}
        await csms.wait_for(lambda: csms.of("Authorize"))
        await asyncio.sleep(0.1)
        assert cp.connectors[1].session is None  # refused: the connector is free again
        await cp.stop()

    run(main())
    assert meter.started is None


def test_authorize_timeout_is_a_result_not_a_hang(csms):
    csms.silent.add("Authorize")

    async def main():
        cp = api.init(INFO, CS, Meter())
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        t = asyncio.get_running_loop().time()
        status = await cp.session_open(1).authorize("SLOW", 300)
        took = asyncio.get_running_loop().time() - t
        await cp.stop()
        return status, took

    status, took = run(main())
    assert status == api.TIMEOUT
    assert took < 2


def test_start_waits_for_its_answer_no_longer_than_asked(csms):
    # The transaction starts locally either way; the call returns TIMEOUT while the message is
    # still on its way.
    csms.silent.add("StartTransaction")

    async def main():
        cp = api.init(INFO, CS, Meter())
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        loop = asyncio.get_running_loop()
        sess = cp.session_open(1)
        sess.accept("X1")
        t = loop.time()
        status = await sess.start_transaction(0, 1, 300)
        took = loop.time() - t
        running = sess.tx is not None and cp.connectors[1].tx is sess.tx
        await cp.stop()
        return status, took, running

    status, took, running = run(main())
    assert status == api.TIMEOUT and 0.25 < took < 2
    assert running


def test_start_and_stop_return_once_answered(csms):
    # Woken by the answer, not at the end of the timeout.
    async def main():
        cp = api.init(INFO, CS, Meter())
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        loop = asyncio.get_running_loop()
        sess = cp.session_open(1)
        sess.accept("X1")
        t = loop.time()
        started = await sess.start_transaction(0, 1, 20000)
        stopped = await sess.stop_transaction(10, 20000)
        took = loop.time() - t
        await cp.stop()
        return started, stopped, took

    started, stopped, took = run(main())
    assert started == stopped == "Accepted"
    assert took < 5


def test_start_refused_by_central_system_stops_the_transaction(csms):
    meter = Meter()
    csms.answers["StartTransaction"] = {"transactionId": 9, "idTagInfo": {"status": "Invalid"}}

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        sess = cp.session_open(1)
        sess.accept("X1")
        cp.connector_event(1, api.EV_PLUGGED)
        assert await sess.start_transaction(100, 1, 2000) == "Invalid"
        await csms.wait_for(lambda: csms.of("StopTransaction"))
        await cp.stop()

    run(main())
    stop = csms.of("StopTransaction")[0]
    assert stop["transactionId"] == 9 and stop["reason"] == "DeAuthorized"
    assert (api.STOP_CHARGING, 1, "DeAuthorized") in meter.told


def test_metering_sleeps_until_due_and_wakes_on_a_change(csms):
    # The sampling tasks do not poll: a changed interval wakes them, and so does the end of the
    # transaction (the task goes at once even with a long interval).
    meter = Meter()

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        assert cp.config.change("MeterValueSampleInterval", "0") == "Accepted"
        sess = cp.session_open(1)
        sess.accept("TAG1")
        cp.connector_event(1, api.EV_PLUGGED)
        assert await sess.start_transaction(meter.wh, 1, 2000) == api.ACCEPTED
        await asyncio.sleep(1.2)
        # This transaction's task; none for clock-aligned data while its interval is 0.
        assert not csms.of("MeterValues") and len(cp.meter_wakers) == 1
        assert cp.aligned_task is None
        loop = asyncio.get_event_loop()
        changed = loop.time()
        assert cp.config.change("MeterValueSampleInterval", "1") == "Accepted"
        await csms.wait_for(lambda: csms.of("MeterValues"), 3)
        first = loop.time() - changed
        assert 0.8 < first < 1.6  # one interval after the change, not after an old grid
        assert cp.config.change("ClockAlignedDataInterval", "1") == "Accepted"
        await csms.wait_for(lambda: any(
            mv["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
            for mv in csms.of("MeterValues")), 3)
        assert len(cp.meter_wakers) == 2 and cp.aligned_task is not None
        assert cp.config.change("ClockAlignedDataInterval", "0") == "Accepted"
        assert cp.config.change("MeterValueSampleInterval", "3600") == "Accepted"
        await asyncio.sleep(0.2)  # the task asleep again, for an hour; the aligned one gone
        assert len(cp.meter_wakers) == 1 and cp.aligned_task is None
        assert await sess.stop_transaction(meter.wh, 2000) == api.ACCEPTED
        await asyncio.sleep(0.1)
        assert not cp.meter_wakers  # the transaction's task has ended
        await cp.stop()

    run(main())


def test_sampling_keeps_its_caches_only_while_a_transaction_runs(csms):
    # The parsed measurand lists and the JSON of their shapes are made again by the next
    # transaction: between transactions they are RAM for nothing.
    from ocpp import mvjson

    meter = Meter()

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        assert cp.config.change("MeterValueSampleInterval", "1") == "Accepted"
        sessions = []
        for cid in (1, 2):
            sess = cp.session_open(cid)
            sess.accept("TAG%d" % cid)
            cp.connector_event(cid, api.EV_PLUGGED)
            assert await sess.start_transaction(meter.wh, cid, 2000) == api.ACCEPTED
            sessions.append(sess)
        await csms.wait_for(lambda: len(csms.of("MeterValues")) >= 2, 3)
        assert cp.sampling and mvjson._frags
        assert await sessions[0].stop_transaction(meter.wh, 2000) == api.ACCEPTED
        kept = bool(cp.sampling and mvjson._frags)  # connector 2 still samples
        assert await sessions[1].stop_transaction(meter.wh, 2000) == api.ACCEPTED
        dropped = not cp.sampling and mvjson._frags is None
        await cp.stop()
        return kept, dropped

    assert run(main()) == (True, True)


def test_sampled_items_are_parsed_at_the_start_of_the_transaction(csms):
    # metering.begin() parses them with the transaction's other objects, before any sample (the
    # default interval, 60 s, has none in this test): not later, amid other allocations.
    meter = Meter()

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        before = dict(cp.sampling)
        sess = cp.session_open(1)
        sess.accept("TAG1")
        cp.connector_event(1, api.EV_PLUGGED)
        assert await sess.start_transaction(meter.wh, 1, 2000) == api.ACCEPTED
        parsed = cp.sampling.get("MeterValuesSampledData") is not None
        sent = len(csms.of("MeterValues"))
        assert await sess.stop_transaction(meter.wh, 2000) == api.ACCEPTED
        await cp.stop()
        return before, parsed, sent

    assert run(main()) == ({}, True, 0)


def test_sampled_items_are_the_integrators_strings():
    # A measurand the integrator listed is kept as its own string object (no copy per item);
    # one with a phase is still split into measurand and phase.
    from ocpp import metering

    names = ("Energy.Active.Import.Register", "Current.Import")
    info = dict(INFO, measurands=names)
    cp = api.init(info, CS, Meter())
    cp.config.set("MeterValuesSampledData", "Current.Import,Current.Import.L2", False)
    items = metering._items(cp, "MeterValuesSampledData")
    assert items[0][0] is names[1] and items[0][1:4] == ("Current.Import", None, "A")
    assert items[1][:4] == ("Current.Import.L2", "Current.Import", "L2", "A")
