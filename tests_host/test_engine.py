"""The engine on CPython against the fake central system: boot rules, heartbeats, configuration
taking effect, CALLERROR answers to bad frames, one outstanding CALL, timeouts, reconnect backoff,
dead-link detection and the transaction message queue."""
import asyncio
import json

import pytest

from ocpp import api, chargepoint, clock

INFO = {"vendor": "Acme", "model": "Wallbox", "connectors": 1}
CS = {"url": "ws://cs", "cp_id": "CP1"}


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def meter(reason, connector, value):
    return 0 if reason == api.GET_METER_VALUE and value.startswith("Energy") else None


async def started(csms, **cfg):
    cp = api.init(INFO, CS, meter)
    for k, v in cfg.items():
        assert cp.config.change(k, v) == "Accepted"
    cp.start()
    await csms.wait_for(lambda: cp.registration == "Accepted")
    return cp


def test_pending_boot_sends_nothing_else_until_accepted(csms):
    answers = iter(["Pending", "Pending", "Accepted"])
    csms.answers["BootNotification"] = lambda p: {
        "status": next(answers), "currentTime": "2030-05-06T07:08:09Z", "interval": 1}

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        sess = cp.session_open(1)
        assert await sess.authorize("EARLY", 200) == api.TIMEOUT  # not registered: no Authorize
        await csms.wait_for(lambda: cp.registration == "Accepted", 6)
        await csms.wait_for(lambda: len(csms.of("StatusNotification")) >= 2)
        await cp.stop()

    run(main())
    acts = csms.actions()
    assert acts[:3] == ["BootNotification"] * 3
    assert "Authorize" not in acts
    assert clock.synced and clock.now_iso()[:10] == "2030-05-06"


def test_rejected_boot_retries_after_interval_and_sends_nothing_else(csms):
    answers = iter(["Rejected", "Accepted"])
    csms.answers["BootNotification"] = lambda p: {
        "status": next(answers), "currentTime": "2030-01-01T00:00:00Z", "interval": 1}

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        await asyncio.sleep(0.5)
        assert csms.actions() == ["BootNotification"]  # waiting out the interval, silent
        await csms.wait_for(lambda: cp.registration == "Accepted", 5)
        await cp.stop()

    run(main())


def test_heartbeat_at_boot_interval_and_after_change(csms):
    csms.answers["BootNotification"] = {
        "status": "Accepted", "currentTime": "2030-01-01T00:00:00Z", "interval": 1}

    async def main():
        cp = await started(csms)
        assert cp.config.get("HeartbeatInterval") == 1  # §4.2: interval from the boot answer
        await csms.wait_for(lambda: len(csms.of("Heartbeat")) >= 2, 5)
        r = await csms.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "3600"})
        assert r[2] == {"status": "Accepted"}
        n = len(csms.of("Heartbeat"))
        await asyncio.sleep(1.5)
        assert len(csms.of("Heartbeat")) == n  # the new interval took effect at once
        r = await csms.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "1"})
        await csms.wait_for(lambda: len(csms.of("Heartbeat")) > n, 3)
        await cp.stop()

    run(main())


@pytest.mark.parametrize(
    "frame, code",
    [
        ("this is not json", "FormationViolation"),
        ('{"a": 1}', "FormationViolation"),
        ('[2, "x1"]', "FormationViolation"),
        ('[7, "x2", "Heartbeat", {}]', "FormationViolation"),
        ('[2, "x3", "NoSuchAction", {}]', "NotImplemented"),
        ('[2, "x4", "ReserveNow", {}]', "NotSupported"),
        ('[2, "x5", "RemoteStopTransaction", {"transactionId": "12"}]',
         "TypeConstraintViolation"),
        ('[2, "x6", "RemoteStopTransaction", {}]', "OccurenceConstraintViolation"),
        ('[2, "x7", "ChangeAvailability", {"connectorId": 1, "type": "Sometimes"}]',
         "PropertyConstraintViolation"),
        ('[2, "x8", "RemoteStartTransaction", {"idTag": "123456789012345678901"}]',
         "TypeConstraintViolation"),
        ('[2, "x9", "RemoteStopTransaction", {"transactionId": 1, "extra": 2}]',
         "FormationViolation"),
        ('[2, "x10", "RemoteStopTransaction", []]', "FormationViolation"),
        ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "FormationViolation"),
    ],
)
def test_bad_frames_get_the_spec_callerror_and_the_link_stays(csms, frame, code):
    async def main():
        cp = await started(csms)
        n = len(csms.frames)
        csms.push(frame)
        await csms.wait_for(lambda: len(csms.frames) > n and csms.frames[-1][0] == 4)
        err = csms.frames[-1]
        # The connection is still up and serving: a CALL after the garbage is answered.
        r = await csms.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"})
        assert r[2] == {"status": "Accepted"}
        assert csms.connects == 1
        await cp.stop()
        return err

    err = run(main())
    assert err[2] == code
    assert len(err) == 5 and isinstance(err[3], str) and err[4] == {}
    try:
        sent = json.loads(frame)
    except ValueError:
        sent = None
    if (isinstance(sent, list) and len(sent) > 1 and isinstance(sent[1], str)
            and len(sent[1]) <= 36):
        assert err[1] == sent[1]


def test_unmatched_answers_are_ignored(csms):
    async def main():
        cp = await started(csms)
        n = len(csms.frames)
        csms.push('[3, "nobody", {}]')
        csms.push('[4, "nobody", "GenericError", "", {}]')
        await asyncio.sleep(0.1)
        assert len(csms.frames) == n  # no answer to an answer
        await cp.stop()

    run(main())


def test_one_outstanding_call_and_timeouts(csms):
    csms.silent.add("Authorize")

    async def main():
        cp = await started(csms)
        base = len(csms.frames)
        sessions = [cp.session_open() for _ in range(3)]
        tasks = [asyncio.create_task(s.authorize("T%d" % i, 400)) for i, s in
                 enumerate(sessions)]
        await asyncio.sleep(0.2)
        assert [f[2] for f in csms.frames[base:]] == ["Authorize"]  # the others wait their turn
        t = asyncio.get_running_loop().time()
        results = await asyncio.gather(*tasks)
        took = asyncio.get_running_loop().time() - t
        # The timeout bounds the whole wait, queueing included: nobody waits 3 x 400 ms.
        assert took < 0.6
        # The link is still up: one timeout is no proof of a dead link.
        assert csms.connects == 1 and not csms.ws.closed
        await cp.stop()
        return results

    assert run(main()) == [api.TIMEOUT] * 3
    assert [p["idTag"] for p in csms.of("Authorize")] == ["T0"]


def test_reconnect_backoff_grows_with_jitter(csms, monkeypatch):
    delays = []

    async def fake_sleep(ms):
        delays.append(ms)
        await asyncio.sleep(0)

    monkeypatch.setattr(chargepoint, "sleep_ms", fake_sleep)
    csms.down = True

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.start()
        while len(delays) < 9:
            await asyncio.sleep(0)
        csms.down = False
        await csms.wait_for(lambda: cp.registration == "Accepted")
        await cp.stop()

    run(main())
    base = 1000
    for d in delays[:8]:
        assert base * 0.75 <= d <= base * 1.25
        base = min(base * 2, 60000)
    assert delays[6] >= 45000  # capped near 60 s, not growing without bound
    assert len(set(delays[:8])) == 8


def test_dead_link_detected_by_ping_and_reconnected(csms):
    csms.answer_pings = False

    async def main():
        cp = await started(csms, WebSocketPingInterval="1")
        downs = []
        cp.on_link_down = lambda: downs.append(1)
        first = csms.ws
        await csms.wait_for(lambda: first.closed, 8)
        assert first.pings >= 1
        assert downs  # the network layer was told (e.g. Wi-Fi rejoins)
        await csms.wait_for(lambda: csms.connects >= 2, 5)
        await cp.stop()

    run(main())
    assert csms.actions().count("BootNotification") == 1  # §5.4: no second boot on reconnect


def test_reader_failure_reconnects_instead_of_stopping(csms):
    # Whatever escapes the handling of a message (a bug, no memory) costs the connection,
    # never the engine: it reconnects, registered still (§5.4: no second boot).
    async def main():
        cp = api.init(INFO, CS, meter)
        real = cp.rpc.handle

        def handle(data):  # the socket's serve() is handed this at connect
            if b'"cs-x"' in bytes(data):
                cp.rpc.handle = real  # (the next connection gets the real one)
                raise RuntimeError("bug")
            return real(data)

        cp.rpc.handle = handle
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        csms.push('[2,"cs-x","Heartbeat",{}]')
        await csms.wait_for(lambda: csms.connects >= 2, 5)
        await cp.heartbeat()
        await cp.stop()

    run(main())
    assert csms.actions().count("BootNotification") == 1


def test_ping_interval_change_takes_effect_at_once(csms):
    # The pinger sleeps while WebSocketPingInterval is 0; the change wakes it.
    async def main():
        cp = await started(csms, WebSocketPingInterval="0")
        await asyncio.sleep(1.2)
        assert csms.ws.pings == 0
        answer = await csms.call("ChangeConfiguration",
                                 {"key": "WebSocketPingInterval", "value": "1"})
        assert answer[2] == {"status": "Accepted"}
        await csms.wait_for(lambda: csms.ws.pings >= 1, 2.5)
        await cp.stop()

    run(main())


def test_transaction_message_retried_then_discarded(csms):
    csms.errors["StartTransaction"] = "InternalError"

    async def main():
        cp = await started(csms, TransactionMessageAttempts="2",
                           TransactionMessageRetryInterval="1")
        sess = cp.session_open(1)
        sess.accept("T1")
        r = await sess.start_transaction(5, 1, 300)
        assert r == api.TIMEOUT
        await csms.wait_for(lambda: len(cp.txq) == 0, 5)
        await cp.stop()

    run(main())
    assert csms.actions().count("StartTransaction") == 2


def test_offline_start_is_delivered_with_the_assigned_id(csms):
    csms.down = True

    async def main():
        cp = api.init(INFO, CS, meter)
        cp.config.change("AllowOfflineTxForUnknownId", "true")
        cp.config.change("MeterValueSampleInterval", "1")
        cp.start()
        sess = cp.session_open(1)
        assert await sess.authorize("OFF1", 100) == api.ACCEPTED
        cp.connector_event(1, api.EV_PLUGGED)
        assert await sess.start_transaction(10, 1, 100) == api.TIMEOUT
        await asyncio.sleep(1.5)
        assert await sess.stop_transaction(20, 100) == api.TIMEOUT
        assert len(cp.txq) >= 3
        csms.down = False
        await csms.wait_for(lambda: len(cp.txq) == 0, 8)
        await cp.stop()

    run(main())
    tx = [a for a in csms.actions() if a in ("StartTransaction", "MeterValues",
                                             "StopTransaction")]
    assert tx[0] == "StartTransaction" and tx[-1] == "StopTransaction"
    assert "MeterValues" in tx
    ids = {p["transactionId"] for p in csms.of("MeterValues") + csms.of("StopTransaction")}
    assert ids == {1}
