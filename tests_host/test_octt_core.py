"""OCTT 1.6 Core test cases in which the charge point is under test (octt16.txt §2.1-2.16),
played with the firmware on MicroPython (tools/sim) against the local central system. Each test
is named after its case; docs/conformance.md lists them. Power-failure and offline cases
(TC_032-TC_039) live with the journal's tests."""
import time

from harness import Sim
from live import (  # noqa: F401  (fixtures)
    call, central, charging, configure, conn, rx_after, sim, statuses, wait_status_sent)


def test_tc_001_cold_boot(tmp_path):
    from harness import Csms

    with Csms("--boot-status", "Rejected", "--boot-interval", "1", "--ping-interval", "0",
              workdir=tmp_path) as cs:
        with Sim(cs.url, "CP1", workdir=tmp_path) as sim:
            first = cs.wait_rx("BootNotification", timeout=10)
            cs.wait_for(lambda m: m.get("dir") == "tx" and m["msg"][0] == 3
                        and m["msg"][2].get("status") == "Rejected")
            cs.set(boot_status="Accepted", boot_interval=2)
            cs.wait_rx("BootNotification", timeout=5)
            t0 = time.time()
            sim.wait_status(lambda s: s["accepted"])
            sn = [m[3] for m in cs.rx_calls("StatusNotification")]
            assert {(p["connectorId"], p["status"]) for p in sn} >= {(0, "Available"),
                                                                      (1, "Available")}
            cs.wait_rx("Heartbeat", timeout=5)
            cs.wait_rx("Heartbeat", timeout=5)
            assert time.time() - t0 >= 2  # every interval from the Accepted answer
            # Nothing but BootNotification was sent while Rejected.
            calls = [ln["msg"][2] for ln in cs.lines
                     if ln.get("dir") == "rx" and isinstance(ln.get("msg"), list)
                     and ln["msg"][0] == 2]
            assert calls[:2] == ["BootNotification", "BootNotification"]
            assert first[3]["chargePointModel"]


def test_tc_002_cold_boot_pending(tmp_path):
    from harness import Csms

    with Csms("--boot-status", "Pending", "--boot-interval", "2", "--ping-interval", "0",
              workdir=tmp_path) as cs:
        with Sim(cs.url, "CP1", workdir=tmp_path) as sim:
            cs.wait_rx("BootNotification", timeout=10)
            cs.wait_for(lambda m: m.get("dir") == "tx" and m["msg"][0] == 3
                        and m["msg"][2].get("status") == "Pending")
            r = cs.call("CP1", "GetConfiguration", {})
            assert any(k["key"] == "MeterValueSampleInterval" for k in r["configurationKey"])
            r = cs.call("CP1", "ChangeConfiguration",
                        {"key": "MeterValueSampleInterval", "value": "30"})
            assert r["status"] == "Accepted"
            cs.set(boot_status="Accepted")
            cs.wait_rx("BootNotification", timeout=5)
            sim.wait_status(lambda s: s["accepted"])
            cs.wait_rx("StatusNotification", timeout=5)


def test_tc_003_plugin_first(central, sim):
    mark = central.mark()
    sim.send("plug 1")
    wait_status_sent(central, "Preparing", since=mark)
    sim.send("card 1 CARD1")
    assert central.wait_rx("Authorize")[3] == {"idTag": "CARD1"}
    central.wait_rx("StartTransaction")
    wait_status_sent(central, "Charging", since=mark)


def test_tc_004_1_identification_first(central, sim):
    mark = central.mark()
    sim.send("card 1 CARD1")
    wait_status_sent(central, "Preparing", since=mark)
    sim.send("plug 1")
    central.wait_rx("StartTransaction")
    wait_status_sent(central, "Charging", since=mark)


def test_tc_004_2_connection_timeout(central, sim):
    configure(central, ConnectionTimeOut=2)
    mark = central.mark()
    sim.send("card 1 CARD1")
    wait_status_sent(central, "Preparing", since=mark)
    wait_status_sent(central, "Available", since=mark, timeout=6)
    assert not central.rx_calls("StartTransaction")


def test_tc_068_stop_with_same_id(central, sim):
    txid = charging(central, sim, "CARD1")
    n = len(central.rx_calls("Authorize"))
    sim.send("card 1 OTHER2")  # no parentIdTag: another card cannot stop it, and is not asked
    time.sleep(1)
    assert len(central.rx_calls("Authorize")) == n
    assert not central.rx_calls("StopTransaction")
    mark = central.mark()
    sim.send("card 1 CARD1")
    stop = central.wait_rx("StopTransaction")[3]
    assert stop["idTag"] == "CARD1" and stop["transactionId"] == txid
    wait_status_sent(central, "Finishing", since=mark)


def test_tc_069_stop_with_same_parent(central, sim):
    central.set(parents={"CARD1": "GROUP", "CARD2": "GROUP"})
    txid = charging(central, sim, "CARD1")
    mark = central.mark()
    sim.send("card 1 CARD2")
    assert rx_after(central, "Authorize", mark)[3] == {"idTag": "CARD2"}
    stop = central.wait_rx("StopTransaction")[3]
    assert stop["idTag"] == "CARD2" and stop["transactionId"] == txid
    wait_status_sent(central, "Finishing", since=mark)


def test_tc_005_1_ev_side_disconnect_stop_and_unlock(central, sim):
    configure(central, MinimumStatusDuration=0, StopTransactionOnEVSideDisconnect="true",
              UnlockConnectorOnEVSideDisconnect="true")
    charging(central, sim)
    mark = central.mark()
    sim.send("unplug 1")
    assert central.wait_rx("StopTransaction")[3]["reason"] == "EVDisconnected"
    # Unplugged: the connector goes straight on to Available once the cable is out.
    wait_status_sent(central, "Available", since=mark)


def test_tc_005_2_ev_side_disconnect_stop_no_unlock(central, sim):
    configure(central, MinimumStatusDuration=0, StopTransactionOnEVSideDisconnect="true",
              UnlockConnectorOnEVSideDisconnect="false")
    charging(central, sim)
    sim.send("unplug 1")
    assert central.wait_rx("StopTransaction")[3]["reason"] == "EVDisconnected"
    assert call(central, "UnlockConnector", {"connectorId": 1})["status"] in (
        "Unlocked", "NotSupported")


def test_tc_005_3_ev_side_disconnect_keeps_transaction(central, sim):
    configure(central, MinimumStatusDuration=0, StopTransactionOnEVSideDisconnect="false",
              UnlockConnectorOnEVSideDisconnect="false")
    txid = charging(central, sim)
    mark = central.mark()
    sim.send("unplug 1")
    p = wait_status_sent(central, "SuspendedEV", since=mark)
    assert p["info"] == "EV side disconnected"
    assert not central.rx_calls("StopTransaction")
    assert call(central, "RemoteStopTransaction", {"transactionId": txid})["status"] == \
        "Accepted"
    assert central.wait_rx("StopTransaction")[3]["reason"] == "Remote"


def test_tc_007_cached_id_remote_start(central, sim):
    configure(central, AuthorizationCacheEnabled="true", AuthorizeRemoteTxRequests="true",
              LocalPreAuthorize="true")
    # IdTagCached: one session authorised by the central system puts the card in the cache.
    charging(central, sim, "CACHED")
    sim.send("card 1 CACHED")
    central.wait_rx("StopTransaction")
    sim.send("unplug 1")
    sim.wait_status(lambda s: conn(s)["status"] == "Available")
    n = len(central.rx_calls("Authorize"))
    mark = central.mark()
    sim.send("plug 1")
    wait_status_sent(central, "Preparing", since=mark)
    assert call(central, "RemoteStartTransaction",
                {"idTag": "CACHED", "connectorId": 1})["status"] == "Accepted"
    assert central.wait_rx("StartTransaction")[3]["idTag"] == "CACHED"
    wait_status_sent(central, "Charging", since=mark)
    assert len(central.rx_calls("Authorize")) == n  # the cache answered


def test_tc_061_clear_cache(central, sim):
    configure(central, AuthorizationCacheEnabled="true", LocalPreAuthorize="true",
              ConnectionTimeOut=2)
    mark = central.mark()
    sim.send("card 1 CARD1")
    wait_status_sent(central, "Preparing", since=mark)
    wait_status_sent(central, "Available", since=mark, timeout=6)
    assert call(central, "ClearCache")["status"] == "Accepted"
    n = len(central.rx_calls("Authorize"))
    sim.send("card 1 CARD1")
    central.wait_for(lambda _: len(central.rx_calls("Authorize")) > n)


def test_tc_010_remote_start_cable_plugged_first(central, sim):
    mark = central.mark()
    sim.send("plug 1")
    wait_status_sent(central, "Preparing", since=mark)
    assert call(central, "RemoteStartTransaction",
                {"idTag": "REMOTE", "connectorId": 1})["status"] == "Accepted"
    assert central.wait_rx("StartTransaction")[3]["idTag"] == "REMOTE"
    wait_status_sent(central, "Charging", since=mark)


def test_tc_011_1_remote_start_first(central, sim):
    r = call(central, "GetConfiguration", {"key": ["AuthorizeRemoteTxRequests"]})
    authorize_first = r["configurationKey"][0]["value"] == "true"
    mark = central.mark()
    assert call(central, "RemoteStartTransaction", {"idTag": "REMOTE"})["status"] == "Accepted"
    if authorize_first:
        central.wait_rx("Authorize")
    wait_status_sent(central, "Preparing", since=mark)
    sim.send("plug 1")
    central.wait_rx("StartTransaction")
    wait_status_sent(central, "Charging", since=mark)


def test_tc_011_2_remote_start_time_out(central, sim):
    configure(central, ConnectionTimeOut=2, AuthorizeRemoteTxRequests="true")
    mark = central.mark()
    assert call(central, "RemoteStartTransaction", {"idTag": "REMOTE"})["status"] == "Accepted"
    central.wait_rx("Authorize")
    wait_status_sent(central, "Preparing", since=mark)
    wait_status_sent(central, "Available", since=mark, timeout=6)


def test_tc_012_remote_stop(central, sim):
    txid = charging(central, sim)
    mark = central.mark()
    assert call(central, "RemoteStopTransaction", {"transactionId": txid})["status"] == \
        "Accepted"
    assert central.wait_rx("StopTransaction")[3]["reason"] == "Remote"
    wait_status_sent(central, "Finishing", since=mark)


def _reset_keeps_unavailable(central, sim, kind):
    mark = central.mark()
    r = call(central, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert r["status"] == "Accepted"
    wait_status_sent(central, "Unavailable", since=mark)
    assert call(central, "Reset", {"type": kind})["status"] == "Accepted"
    central.wait_rx("BootNotification", timeout=10)  # the first one, at start
    central.wait_rx("BootNotification", timeout=15)  # after the restart
    mark = central.mark()
    wait_status_sent(central, "Unavailable", since=mark)  # persisted (§5.14)
    r = call(central, "ChangeAvailability", {"connectorId": 1, "type": "Operative"})
    assert r["status"] == "Accepted"
    wait_status_sent(central, "Available", since=mark)


def test_tc_013_hard_reset_without_transaction(central, sim):
    _reset_keeps_unavailable(central, sim, "Hard")


def test_tc_014_soft_reset_without_transaction(central, sim):
    _reset_keeps_unavailable(central, sim, "Soft")


def _reset_with_transaction(central, sim, kind):
    txid = charging(central, sim)
    assert call(central, "Reset", {"type": kind})["status"] == "Accepted"
    stop = central.wait_rx("StopTransaction")[3]
    assert stop["reason"] == kind + "Reset" and stop["transactionId"] == txid
    central.wait_rx("BootNotification", timeout=10)
    central.wait_rx("BootNotification", timeout=15)
    s = sim.wait_status(lambda s: s["accepted"], timeout=15)
    assert conn(s)["transaction"] is None
    assert len(central.rx_calls("StopTransaction")) == 1


def test_tc_015_hard_reset_with_transaction(central, sim):
    _reset_with_transaction(central, sim, "Hard")


def test_tc_016_soft_reset_with_transaction(central, sim):
    _reset_with_transaction(central, sim, "Soft")


def test_tc_017_1_unlock_no_session(central, sim):
    assert call(central, "UnlockConnector", {"connectorId": 1})["status"] == "Unlocked"


def test_tc_017_2_unlock_fixed_cable(central, sim):
    sim.send("lock 1 fixed")
    assert call(central, "UnlockConnector", {"connectorId": 1})["status"] == "NotSupported"


def test_tc_018_1_unlock_with_session(central, sim):
    charging(central, sim)
    mark = central.mark()
    assert call(central, "UnlockConnector", {"connectorId": 1})["status"] == "Unlocked"
    assert central.wait_rx("StopTransaction")[3]["reason"] == "UnlockCommand"
    wait_status_sent(central, "Finishing", since=mark)
    sim.send("unplug 1")
    wait_status_sent(central, "Available", since=mark)


def test_tc_018_2_unlock_with_session_fixed_cable(central, sim):
    sim.send("lock 1 fixed")
    charging(central, sim)
    assert call(central, "UnlockConnector", {"connectorId": 1})["status"] == "NotSupported"
    time.sleep(0.5)
    assert not central.rx_calls("StopTransaction")


def test_tc_019_retrieve_configuration(central, sim):
    r = call(central, "GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    assert "unknownKey" not in r and "Core" in r["configurationKey"][0]["value"]
    full = call(central, "GetConfiguration")["configurationKey"]
    keys = {k["key"]: k["readonly"] for k in full}
    for k in ("ClockAlignedDataInterval", "ConnectionTimeOut", "ConnectorPhaseRotation",
              "HeartbeatInterval", "LocalAuthorizeOffline", "LocalPreAuthorize",
              "MeterValuesAlignedData", "MeterValuesSampledData", "MeterValueSampleInterval",
              "ResetRetries", "StopTransactionOnInvalidId", "StopTxnAlignedData",
              "StopTxnSampledData", "TransactionMessageAttempts",
              "TransactionMessageRetryInterval"):
        assert keys[k] is False, k
    for k in ("GetConfigurationMaxKeys", "NumberOfConnectors", "SupportedFeatureProfiles"):
        assert keys[k] is True, k
    assert "AuthorizeRemoteTxRequests" in keys and "UnlockConnectorOnEVSideDisconnect" in keys
    mx = int(call(central, "GetConfiguration", {"key": ["GetConfigurationMaxKeys"]})
             ["configurationKey"][0]["value"])
    pick = list(keys)[:min(mx, len(keys))]
    r = call(central, "GetConfiguration", {"key": pick})
    assert "unknownKey" not in r and [k["key"] for k in r["configurationKey"]] == pick


def test_tc_021_change_configuration(central, sim):
    configure(central, MeterValueSampleInterval=23)
    r = call(central, "GetConfiguration", {"key": ["MeterValueSampleInterval"]})
    assert r["configurationKey"][0]["value"] == "23"


def test_tc_070_sampled_meter_values(central, sim):
    configure(central, MeterValueSampleInterval=2, ClockAlignedDataInterval=0)
    measurands = call(central, "GetConfiguration", {"key": ["MeterValuesSampledData"]})[
        "configurationKey"][0]["value"].split(",")
    txid = charging(central, sim)
    mvs = [central.wait_rx("MeterValues", timeout=5)[3] for _ in range(3)]
    from ocpp import clock  # our own lib: parses the timestamps

    stamps = [clock.parse(m["meterValue"][0]["timestamp"]) for m in mvs]
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [2, 2]
    for m in mvs:
        assert m["transactionId"] == txid
        sv = m["meterValue"][0]["sampledValue"]
        assert {v["context"] for v in sv} == {"Sample.Periodic"}
        assert [v["measurand"] for v in sv] == measurands


def test_tc_071_clock_aligned_meter_values(central, sim):
    configure(central, MeterValueSampleInterval=0, ClockAlignedDataInterval=2)
    measurands = call(central, "GetConfiguration", {"key": ["MeterValuesAlignedData"]})[
        "configurationKey"][0]["value"].split(",")
    charging(central, sim)
    mvs = [central.wait_rx("MeterValues", timeout=6)[3] for _ in range(3)]
    from ocpp import clock

    stamps = [clock.parse(m["meterValue"][0]["timestamp"]) for m in mvs]
    assert all(t % 2 == 0 for t in stamps)
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [2, 2]
    for m in mvs:
        sv = m["meterValue"][0]["sampledValue"]
        assert {v["context"] for v in sv} == {"Sample.Clock"}
        assert [v["measurand"] for v in sv] == measurands


def test_tc_023_authorize_invalid(central, sim):
    central.set(reject_tags=["BADCARD"])
    configure(central, MinimumStatusDuration=1, LocalPreAuthorize="true")
    mark = central.mark()
    sim.send("plug 1")
    wait_status_sent(central, "Preparing", since=mark)
    sim.send("card 1 BADCARD")
    central.wait_rx("Authorize")
    time.sleep(1.5)
    assert not central.rx_calls("StartTransaction")
    assert conn(sim.status())["transaction"] is None


def test_tc_024_lock_failure(central, sim):
    sim.send("lock 1 fail")
    mark = central.mark()
    assert call(central, "RemoteStartTransaction", {"idTag": "REMOTE"})["status"] == "Accepted"
    wait_status_sent(central, "Preparing", since=mark)
    sim.send("plug 1")
    p = wait_status_sent(central, "Faulted", since=mark)
    assert p["errorCode"] == "ConnectorLockFailure"
    time.sleep(1)
    assert not central.rx_calls("StartTransaction")


def test_tc_026_remote_start_rejected_when_busy(central, sim):
    configure(central, LocalPreAuthorize="false")
    charging(central, sim)
    r = call(central, "RemoteStartTransaction", {"idTag": "AGAIN", "connectorId": 1})
    assert r["status"] == "Rejected"


def test_tc_027_remote_start_connector_zero(central, sim):
    r = call(central, "RemoteStartTransaction", {"idTag": "ZERO", "connectorId": 0})
    assert r["status"] == "Rejected"


def test_tc_028_remote_stop_unknown_transaction(central, sim):
    txid = charging(central, sim)
    r = call(central, "RemoteStopTransaction", {"transactionId": txid + 1000})
    assert r["status"] == "Rejected"


def test_tc_030_unlock_failure(central, sim):
    sim.send("lock 1 fail")
    assert call(central, "UnlockConnector", {"connectorId": 1})["status"] == "UnlockFailed"


def test_tc_031_unlock_unknown_connector(central, sim):
    assert call(central, "UnlockConnector", {"connectorId": 9})["status"] == "NotSupported"


def test_tc_040_1_unknown_configuration_key(central, sim):
    r = call(central, "ChangeConfiguration", {"key": "Testing", "value": "true"})
    assert r["status"] == "NotSupported"


def test_tc_040_2_invalid_configuration_value(central, sim):
    r = call(central, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "-1"})
    assert r["status"] == "Rejected"


def test_tc_041_fault_behaviour(central, sim):
    mark = central.mark()
    sim.send("fault 1 GroundFailure")
    p = wait_status_sent(central, "Faulted", since=mark)
    assert p["errorCode"] == "GroundFailure"
    sim.send("plug 1")
    sim.send("card 1 CARD1")
    time.sleep(2)
    assert not central.rx_calls("StartTransaction")
    sim.send("clear 1")
    wait_status_sent(central, "Preparing", since=mark)
