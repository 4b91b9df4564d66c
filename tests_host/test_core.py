"""Core profile behaviour on CPython against the fake central system: availability, reset,
unlock, configuration rules, the authorization cache, stop-transaction data, clock-aligned
values, data transfer, faults and status reporting."""
import asyncio
import os

import pytest

from ocpp import api, clock, store

INFO = {"vendor": "Acme", "model": "Wallbox", "connectors": 2}
CS = {"url": "ws://cs", "cp_id": "CP1", "auth_key": "initial-key-0123456"}


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Hw:
    def __init__(self, lock=True):
        self.wh = 100
        self.lock = lock
        self.told = []

    def __call__(self, reason, cid, value):
        if reason == api.GET_METER_VALUE:
            return {"Energy.Active.Import.Register": self.wh, "Voltage": 230}.get(value)
        self.told.append((reason, cid, value))
        if reason == api.UNLOCK_CONNECTOR:
            return self.lock
        return True


async def boot(csms, hw=None, **cfg):
    cp = api.init(INFO, CS, hw or Hw())
    for k, v in cfg.items():
        assert cp.config.change(k, v) == "Accepted", k
    cp.start()
    await csms.wait_for(lambda: cp.registration == "Accepted")
    return cp


async def charging(cp, cid=1, tag="T1"):
    sess = cp.session_open(cid)
    sess.accept(tag)
    cp.connector_event(cid, api.EV_PLUGGED)
    assert await sess.start_transaction(100, cid, 2000) == api.ACCEPTED
    cp.connector_event(cid, api.EV_CHARGING)
    return sess


def statuses(csms, cid):
    return [p["status"] for p in csms.of("StatusNotification") if p["connectorId"] == cid]


async def settled(csms, cp, cid, status):
    await csms.wait_for(lambda: cp.connectors[cid].reported == (status, cp.connectors[cid]
                                                                 .error_code))


def test_change_availability_persists_and_waits_for_transactions(csms):
    async def first():
        cp = await boot(csms)
        r = await csms.call("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
        assert r[2] == {"status": "Accepted"}
        await settled(csms, cp, 2, "Unavailable")
        await charging(cp, 1)
        r = await csms.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        assert r[2] == {"status": "Scheduled"}
        assert cp.connectors[1].status == "Charging"
        await cp.connectors[1].session.stop_transaction(200, 2000)
        await settled(csms, cp, 1, "Unavailable")
        r = await csms.call("ChangeAvailability", {"connectorId": 9, "type": "Operative"})
        assert r[2] == {"status": "Rejected"}
        await cp.stop()

    async def after_reboot():
        cp = await boot(csms)
        await settled(csms, cp, 2, "Unavailable")
        assert cp.connectors[1].status == "Unavailable"
        # A remote start on an unavailable connector is refused.
        r = await csms.call("RemoteStartTransaction", {"idTag": "X", "connectorId": 2})
        assert r[2] == {"status": "Rejected"}
        r = await csms.call("ChangeAvailability", {"connectorId": 0, "type": "Operative"})
        r = await csms.call("ChangeAvailability", {"connectorId": 1, "type": "Operative"})
        r = await csms.call("ChangeAvailability", {"connectorId": 2, "type": "Operative"})
        await settled(csms, cp, 2, "Available")
        r = await csms.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
        assert r[2] == {"status": "Accepted"}
        await settled(csms, cp, 1, "Unavailable")
        await settled(csms, cp, 0, "Unavailable")
        await cp.stop()

    run(first())
    run(after_reboot())


@pytest.mark.parametrize("kind", ["Soft", "Hard"])
def test_reset_stops_transactions_then_restarts(csms, kind):
    hw = Hw()

    async def main():
        cp = await boot(csms, hw)
        await charging(cp, 2)
        r = await csms.call("Reset", {"type": kind})
        assert r[2] == {"status": "Accepted"}
        await csms.wait_for(lambda: (api.RESET, 0, kind) in hw.told)
        await cp.stop()

    run(main())
    stop = csms.of("StopTransaction")[0]
    assert stop["reason"] == kind + "Reset"
    # The StopTransaction went out before the restart was asked for.
    assert hw.told.index((api.STOP_CHARGING, 2, kind + "Reset")) < hw.told.index(
        (api.RESET, 0, kind))


@pytest.mark.parametrize("lock, expect", [(True, "Unlocked"), (False, "UnlockFailed"),
                                          (None, "NotSupported")])
def test_unlock_connector(csms, lock, expect):
    async def main():
        cp = await boot(csms, Hw(lock))
        r = await csms.call("UnlockConnector", {"connectorId": 1})
        assert r[2] == {"status": expect}
        r = await csms.call("UnlockConnector", {"connectorId": 7})  # TC_031
        assert r[2] == {"status": "NotSupported"}
        await cp.stop()

    run(main())


def test_unlock_during_transaction_stops_it(csms):
    hw = Hw()

    async def main():
        cp = await boot(csms, hw)
        await charging(cp, 1)
        r = await csms.call("UnlockConnector", {"connectorId": 1})
        assert r[2] == {"status": "Unlocked"}
        await csms.wait_for(lambda: csms.of("StopTransaction"))
        await settled(csms, cp, 1, "Finishing")
        await cp.stop()

    run(main())
    assert csms.of("StopTransaction")[0]["reason"] == "UnlockCommand"
    # Energy off before the lock opened.
    assert hw.told.index((api.STOP_CHARGING, 1, "UnlockCommand")) < hw.told.index(
        (api.UNLOCK_CONNECTOR, 1, None))


REQUIRED = {  # TC_019: required Core keys and their accessibility
    "AuthorizeRemoteTxRequests": None, "ClockAlignedDataInterval": False,
    "ConnectionTimeOut": False, "ConnectorPhaseRotation": False,
    "GetConfigurationMaxKeys": True, "HeartbeatInterval": False,
    "LocalAuthorizeOffline": False, "LocalPreAuthorize": False,
    "MeterValuesAlignedData": False, "MeterValuesSampledData": False,
    "MeterValueSampleInterval": False, "NumberOfConnectors": True, "ResetRetries": False,
    "StopTransactionOnInvalidId": False, "StopTxnAlignedData": False,
    "StopTxnSampledData": False, "SupportedFeatureProfiles": True,
    "TransactionMessageAttempts": False, "TransactionMessageRetryInterval": False,
    "UnlockConnectorOnEVSideDisconnect": None,
}


def test_get_configuration_has_every_required_key(csms):
    async def main():
        cp = await boot(csms)
        full = (await csms.call("GetConfiguration", {}))[2]
        some = (await csms.call("GetConfiguration", {"key": [
            "NumberOfConnectors", "AuthorizationKey", "Bogus"]}))[2]
        many = (await csms.call("GetConfiguration", {"key": list(REQUIRED) * 3}))[2]
        await cp.stop()
        return full, some, many

    full, some, many = run(main())
    keys = {k["key"]: k for k in full["configurationKey"]}
    assert "unknownKey" not in full
    for k, ro in REQUIRED.items():
        assert k in keys, k
        if ro is not None:
            assert keys[k]["readonly"] is ro, k
    assert keys["NumberOfConnectors"]["value"] == "2"
    assert keys["SupportedFeatureProfiles"]["value"] == "Core"
    assert "AuthorizationKey" not in keys  # write-only: never reported
    assert some["configurationKey"] == [{"key": "NumberOfConnectors", "readonly": True,
                                         "value": "2"}]
    assert some["unknownKey"] == ["AuthorizationKey", "Bogus"]
    assert len(many["configurationKey"]) == 50  # GetConfigurationMaxKeys


@pytest.mark.parametrize("key, value, status", [
    ("MeterValueSampleInterval", "-1", "Rejected"),  # TC_040_2
    ("MeterValueSampleInterval", "1.5", "Rejected"),
    ("MeterValueSampleInterval", "30", "Accepted"),
    ("Testing", "true", "NotSupported"),  # TC_040_1
    ("NumberOfConnectors", "4", "Rejected"),
    ("LocalPreAuthorize", "TRUE", "Accepted"),
    ("LocalPreAuthorize", "yes", "Rejected"),
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Current.Import.L1", "Accepted"),
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Banana", "Rejected"),
    ("MeterValuesSampledData", ",".join(["Voltage"] * 9), "Rejected"),
    ("AuthorizationKey", "short", "Rejected"),
    ("WebSocketPingInterval", "-5", "Rejected"),
])
def test_change_configuration_rules(csms, key, value, status):
    async def main():
        cp = await boot(csms)
        r = await csms.call("ChangeConfiguration", {"key": key, "value": value})
        await cp.stop()
        return r[2]["status"]

    assert run(main()) == status


def test_configuration_persists_and_corrupt_file_falls_back(csms, tmp_path, capsys):
    async def change():
        cp = await boot(csms)
        r = await csms.call("ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "77"})
        assert r[2]["status"] == "Accepted"
        await cp.stop()

    run(change())
    cp = api.init(INFO, CS, Hw())
    assert cp.config.get("ConnectionTimeOut") == 77
    (tmp_path / "config.json").write_text('{"ConnectionTimeOut": 7')  # torn write
    cp = api.init(INFO, CS, Hw())
    assert cp.config.get("ConnectionTimeOut") == 60
    assert "corrupt" in capsys.readouterr().err
    (tmp_path / "config.json").write_text('{"ConnectionTimeOut": -3, "NumberOfConnectors": 9}')
    cp = api.init(INFO, CS, Hw())
    assert cp.config.get("ConnectionTimeOut") == 60  # a stored value is re-validated
    assert cp.config.get("NumberOfConnectors") == 2


def test_authorization_key_change_reconnects_with_new_password(csms, capsys):
    async def main():
        cp = await boot(csms)
        assert csms.auth == ("CP1", "initial-key-0123456")
        r = await csms.call("ChangeConfiguration", {"key": "AuthorizationKey",
                                                    "value": "0123456789abcdef0123"})
        assert r[2]["status"] == "Accepted"
        await csms.wait_for(lambda: csms.connects >= 2, 5)
        await cp.stop()

    run(main())
    assert csms.auth == ("CP1", "0123456789abcdef0123")
    assert "0123456789abcdef0123" not in capsys.readouterr().err  # never logged


def test_authorization_cache(csms):
    csms.answers["Authorize"] = lambda p: {"idTagInfo": {
        "status": "Accepted" if p["idTag"] != "BAD" else "Blocked",
        "expiryDate": "2099-01-01T00:00:00Z"}}

    async def main():
        cp = await boot(csms)
        s = cp.session_open()
        assert await s.authorize("GOOD") == "Accepted"
        assert await s.authorize("BAD") == "Blocked"
        assert cp.auth_cache.get("GOOD") == ("Accepted", None)
        # Online with LocalPreAuthorize: a cached valid id starts without Authorize (TC_007).
        cp.config.change("LocalPreAuthorize", "true")
        n = len(csms.of("Authorize"))
        assert await s.authorize("GOOD") == "Accepted"
        assert len(csms.of("Authorize")) == n
        # A NOT-valid cached id is asked again when online (§3.5.1).
        assert await s.authorize("BAD") == "Blocked"
        assert len(csms.of("Authorize")) == n + 1
        # Offline: the cache decides (LocalAuthorizeOffline), unknown ids are refused.
        csms.down = True
        await cp.ws.close()
        await csms.wait_for(lambda: not cp.connected)
        assert await s.authorize("GOOD", 200) == "Accepted"
        assert await s.authorize("BAD", 200) == "Blocked"
        assert await s.authorize("NEW", 200) == api.TIMEOUT
        cp.config.change("AllowOfflineTxForUnknownId", "true")
        assert await s.authorize("NEW", 200) == "Accepted"
        assert await s.authorize("BAD", 200) == "Blocked"  # §3.5.4: known invalid stays out
        cp.config.change("LocalAuthorizeOffline", "false")
        assert await s.authorize("GOOD", 200) == api.TIMEOUT
        csms.down = False
        await csms.wait_for(lambda: cp.connected and cp.registration == "Accepted", 5)
        r = await csms.call("ClearCache", {})
        assert r[2] == {"status": "Accepted"}
        assert cp.auth_cache.get("GOOD") is None
        await cp.stop()

    run(main())


def test_cache_persists_expires_and_evicts(csms, monkeypatch):
    async def main():
        cp = await boot(csms)
        cache = cp.auth_cache
        cache.update("OLD", {"status": "Accepted", "expiryDate": "2000-01-01T00:00:00Z"})
        assert cache.get("OLD") == ("Expired", None)
        for i in range(70):
            cache.update("T%d" % i, {"status": "Accepted"})
        await cp.stop()
        return cache

    cache = run(main())
    kept = [i for i in range(70) if cache.get("T%d" % i) is not None]
    assert cache.get("OLD") is None  # the NOT-valid entry went first
    assert kept == list(range(6, 70))  # then the oldest: 64 entries in all
    again = api.init(INFO, CS, Hw())
    assert again.auth_cache.get("T69") == ("Accepted", None)
    assert again.auth_cache.get("t69") == ("Accepted", None)  # idTags are case-insensitive
    # A slot torn by a power cut reads as free; the others stay.
    path = os.path.join(store.dir, "authcache.bin")
    with open(path, "r+b") as f:
        f.seek(53 * 63 + 10)
        f.write(b"X")
    again = api.init(INFO, CS, Hw())
    assert sum(again.auth_cache.get("T%d" % i) is not None for i in range(70)) == 63


def test_stop_transaction_data_and_contexts(csms):
    hw = Hw()

    async def main():
        cp = await boot(csms, hw, StopTxnSampledData="Energy.Active.Import.Register,Voltage",
                        MeterValueSampleInterval="1")
        sess = await charging(cp, 1)
        await asyncio.sleep(2.2)
        hw.wh = 180
        await sess.stop_transaction(180, 2000)
        await cp.stop()

    run(main())
    data = csms.of("StopTransaction")[0]["transactionData"]
    contexts = [mv["sampledValue"][0]["context"] for mv in data]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    assert "Sample.Periodic" in contexts
    assert data[-1]["sampledValue"][0]["value"] == "180"
    assert {v["measurand"] for v in data[0]["sampledValue"]} == {
        "Energy.Active.Import.Register", "Voltage"}


def test_clock_aligned_meter_values(csms):
    async def main():
        cp = await boot(csms, MeterValueSampleInterval="0", ClockAlignedDataInterval="2",
                        MeterValuesAlignedData="Energy.Active.Import.Register,Voltage")
        clock.set_from(clock.fmt(clock.now()))  # the fake's boot time is fixed; use real time
        await charging(cp, 1)
        await csms.wait_for(lambda: len(csms.of("MeterValues")) >= 2, 8)
        await cp.stop()

    run(main())
    mvs = csms.of("MeterValues")[:2]
    stamps = [clock.parse(m["meterValue"][0]["timestamp"]) for m in mvs]
    assert all(t % 2 == 0 for t in stamps)
    assert stamps[1] - stamps[0] == 2
    for m in mvs:
        assert m["transactionId"] == 1
        for v in m["meterValue"][0]["sampledValue"]:
            assert v["context"] == "Sample.Clock"


def test_data_transfer_both_ways(csms):
    csms.answers["DataTransfer"] = {"status": "Accepted", "data": "pong"}

    async def main():
        cp = await boot(csms)
        cp.data_transfer_handler("acme", lambda mid, data: {"status": "Accepted",
                                                            "data": (data or "")[::-1]})
        r = await csms.call("DataTransfer", {"vendorId": "acme", "messageId": "m",
                                             "data": "abc"})
        assert r[2] == {"status": "Accepted", "data": "cba"}
        r = await csms.call("DataTransfer", {"vendorId": "other"})
        assert r[2] == {"status": "UnknownVendorId"}
        assert await cp.data_transfer("acme", "ping", "x") == {"status": "Accepted",
                                                              "data": "pong"}
        await cp.stop()

    run(main())


def test_ev_side_disconnect_rules(csms):
    hw = Hw()

    async def main():
        cp = await boot(csms, hw, StopTransactionOnEVSideDisconnect="false")
        await charging(cp, 1)
        await settled(csms, cp, 1, "Charging")
        cp.connector_event(1, api.EV_UNPLUGGED)
        await settled(csms, cp, 1, "SuspendedEV")
        assert not csms.of("StopTransaction")  # TC_005_3: the transaction stays
        cp.config.change("StopTransactionOnEVSideDisconnect", "true")
        cp.config.change("UnlockConnectorOnEVSideDisconnect", "true")
        await charging(cp, 2)
        cp.connector_event(2, api.EV_UNPLUGGED)
        await csms.wait_for(lambda: csms.of("StopTransaction"))
        await settled(csms, cp, 2, "Available")
        await cp.stop()

    run(main())
    suspended = [p for p in csms.of("StatusNotification") if p["status"] == "SuspendedEV"][0]
    assert suspended["info"] == "EV side disconnected"
    assert csms.of("StopTransaction")[0]["reason"] == "EVDisconnected"
    assert (api.UNLOCK_CONNECTOR, 2, None) in hw.told


def test_fault_reported_with_error_code_and_cleared(csms):
    async def main():
        cp = await boot(csms)
        cp.connector_event(1, api.FAULT, "GroundFailure")
        await settled(csms, cp, 1, "Faulted")
        s = cp.session_open(1)
        s.accept("T")
        assert await s.start_transaction(0, 1, 500) == "Rejected"  # TC_041
        s.close()
        cp.connector_event(1, api.FAULT, "Made-up")
        await csms.wait_for(lambda: cp.connectors[1].reported == ("Faulted", "OtherError"))
        cp.connector_event(1, api.FAULT_CLEARED)
        await settled(csms, cp, 1, "Available")
        await cp.stop()

    run(main())
    faults = [p for p in csms.of("StatusNotification") if p["status"] == "Faulted"]
    assert faults[0]["errorCode"] == "GroundFailure"


def test_minimum_status_duration_hides_short_states(csms):
    async def main():
        cp = await boot(csms, MinimumStatusDuration="1")
        cp.connector_event(1, api.EV_PLUGGED)
        await asyncio.sleep(0.5)
        cp.connector_event(1, api.EV_UNPLUGGED)  # Preparing for only 0.5 s
        cp.connector_event(2, api.EV_PLUGGED)
        await settled(csms, cp, 2, "Preparing")
        await asyncio.sleep(0.2)
        await cp.stop()

    run(main())
    assert "Preparing" not in statuses(csms, 1)
    assert statuses(csms, 2)[-1] == "Preparing"


def test_connection_timeout_returns_to_available(csms):
    async def main():
        cp = await boot(csms, ConnectionTimeOut="1")
        s = cp.session_open(1)
        assert await s.authorize("T") == "Accepted"
        await settled(csms, cp, 1, "Preparing")
        assert not await s.wait_plugged()
        await settled(csms, cp, 1, "Available")
        assert cp.connectors[1].session is None
        await cp.stop()

    run(main())


def test_store_dir_is_used(csms, tmp_path):
    assert store.dir == str(tmp_path)


@pytest.mark.parametrize("text, want", [
    ("2026-03-04T05:06:07Z", 1772600767),
    ("2026-03-04t05:06:07z", 1772600767),
    ("2026-03-04 05:06:07", 1772600767),
    ("2026-03-04T05:06:07.123456Z", 1772600767),
    ("2026-03-04T07:06:07+02:00", 1772600767),
    ("2026-03-04T00:36:07-04:30", 1772600767),
    ("1970-01-01T00:00:00Z", 0),
    ("2024-02-29T23:59:59Z", 1709251199),
    ("2026-03-04T05:06Z", None),  # no seconds
    ("2026-03-04T05:06x07Z", None),
    ("2026-03-04X05:06:07Z", None),
    ("2026-03-04T05:06:07+0200", None),
    ("2026-03-04T05:06:07ZZ", None),
    ("2026-0a-04T05:06:07Z", None),
    ("", None),
    (None, None),
])
def test_clock_parses_ocpp_timestamps(text, want):
    assert clock.parse(text) == want


def test_clock_formats_what_it_parses():
    for t in (0, 59, 86399, 86400, 951782400, 1709251199, 1772600767, 4102444800, 253402300799):
        s = clock.fmt(t)
        assert len(s) == 20 and s.endswith("Z") and clock.parse(s) == t
    assert clock.fmt(1772600767) == "2026-03-04T05:06:07Z"
    assert clock.fmt(951782400) == "2000-02-29T00:00:00Z"


def test_clock_counts_seconds_between_rtc_reads(monkeypatch):
    # now() reads time.time() once a minute and counts the seconds between with ticks_ms().
    rtc, ticks = [1000.75], [5000]
    monkeypatch.setattr(clock.time, "time", lambda: rtc[0])
    monkeypatch.setattr(clock, "ticks_ms", lambda: ticks[0])
    monkeypatch.setattr(clock, "_base", None)
    monkeypatch.setattr(clock, "_offset", 0)
    assert clock.now() == 1000
    ticks[0] += 249  # the RTC's second 1001 begins 250 ms after the read
    rtc[0] = 99999.0  # not read again within the minute
    assert clock.now() == 1000
    ticks[0] += 1
    assert clock.now() == 1001
    ticks[0] += 58000
    assert clock.now() == 1059
    ticks[0] += 2000  # a minute since the read: the RTC is read again
    rtc[0] = 1061.5
    assert clock.now() == 1061
    assert clock.set_from("2026-01-01T00:00:00Z") and clock.now() == 1767225600
