"""The firmware on the real MicroPython unix port (tools/sim) against the local central system
(tools/csms.py, mobilityhouse ocpp, which validates every message against the 1.6 schemas) over
loopback: boot, heartbeat, a card session, a remote start, configuration taking effect, the
central system restarting mid-session, garbage from the central system, Basic auth."""
import json
import time

import pytest

from harness import Csms, Sim
from live import central, conn, sim  # noqa: F401  (fixtures)


@pytest.fixture
def csms(central):
    return central


def test_boot_status_and_heartbeat(csms, sim):
    boot = csms.wait_rx("BootNotification", cp="CP1")
    assert boot[3]["chargePointVendor"] and boot[3]["chargePointModel"]
    s = sim.wait_status(lambda s: s["accepted"] and conn(s)["status"] == "Available")
    assert s["connected"] and s["queued"] == 0 and conn(s)["transaction"] is None
    first = [m[3] for m in csms.rx_calls("StatusNotification", cp="CP1")][:2]
    assert [(p["connectorId"], p["status"]) for p in first] == [(0, "Available"),
                                                                (1, "Available")]
    # HeartbeatInterval changed by the central system takes effect at once.
    assert csms.call("CP1", "ChangeConfiguration",
                     {"key": "HeartbeatInterval", "value": "1"})["status"] == "Accepted"
    csms.wait_rx("Heartbeat", cp="CP1", timeout=5)
    csms.wait_rx("Heartbeat", cp="CP1", timeout=5)


def test_card_session(csms, sim):
    sim.wait_status(lambda s: s["accepted"])
    assert csms.call("CP1", "ChangeConfiguration",
                     {"key": "MeterValueSampleInterval", "value": "1"})["status"] == "Accepted"
    sim.send("plug 1")
    sim.wait_status(lambda s: conn(s)["status"] == "Preparing")
    sim.send("card 1 CARD01")
    assert csms.wait_rx("Authorize")[3] == {"idTag": "CARD01"}
    start = csms.wait_rx("StartTransaction")[3]
    assert (start["connectorId"], start["idTag"], start["meterStart"]) == (1, "CARD01", 0)
    s = sim.wait_status(lambda s: conn(s)["status"] == "Charging" and conn(s)["transaction"])
    txid = conn(s)["transaction"]
    mv = csms.wait_rx("MeterValues", timeout=5)[3]
    assert mv["transactionId"] == txid
    sim.wait_status(lambda s: conn(s)["energy_wh"] >= 3, timeout=10)  # ~1 Wh/s at 16 A
    sim.send("ev 1 0")  # the EV pauses
    sim.wait_status(lambda s: conn(s)["status"] == "SuspendedEV")
    sim.send("ev 1 16")
    sim.wait_status(lambda s: conn(s)["status"] == "Charging")
    sim.send("card 1 CARD01")
    stop = csms.wait_rx("StopTransaction")[3]
    e = sim.status()
    assert stop["transactionId"] == txid and stop["reason"] == "Local"
    assert stop["meterStop"] >= 3 and stop["meterStop"] <= conn(e)["energy_wh"]
    sim.wait_status(lambda s: conn(s)["status"] == "Finishing" and s["queued"] == 0)
    sim.send("unplug 1")
    sim.wait_status(lambda s: conn(s)["status"] == "Available")
    values = [int(v["value"]) for m in csms.rx_calls("MeterValues") for mv in m[3]["meterValue"]
              for v in mv["sampledValue"] if v.get("measurand", "").startswith("Energy")]
    assert values == sorted(values)


def test_rejected_card_does_not_start(csms, sim):
    csms.set(reject_tags=["BAD"])
    sim.wait_status(lambda s: s["accepted"])
    sim.send("plug 1")
    sim.send("card 1 BAD")
    assert csms.wait_rx("Authorize")[3] == {"idTag": "BAD"}
    s = sim.wait_status(lambda s: conn(s)["status"] == "Preparing")
    assert conn(s)["transaction"] is None
    assert not csms.rx_calls("StartTransaction")


def test_remote_start_session(csms, sim):
    sim.wait_status(lambda s: s["accepted"])
    r = csms.call("CP1", "RemoteStartTransaction", {"idTag": "REMOTE1", "connectorId": 1})
    assert r["status"] == "Accepted"
    sim.wait_status(lambda s: conn(s)["status"] == "Preparing")
    sim.send("plug 1")
    start = csms.wait_rx("StartTransaction")[3]
    assert start["idTag"] == "REMOTE1"
    s = sim.wait_status(lambda s: conn(s)["status"] == "Charging" and conn(s)["transaction"])
    txid = conn(s)["transaction"]
    r = csms.call("CP1", "RemoteStopTransaction", {"transactionId": txid})
    assert r["status"] == "Accepted"
    stop = csms.wait_rx("StopTransaction")[3]
    assert stop["transactionId"] == txid and stop["reason"] == "Remote"
    sim.wait_status(lambda s: conn(s)["status"] == "Finishing")


def test_configuration_change_takes_effect(csms, sim):
    sim.wait_status(lambda s: s["accepted"])
    r = csms.call("CP1", "GetConfiguration", {"key": ["MeterValueSampleInterval", "Nope"]})
    assert r["configurationKey"][0]["key"] == "MeterValueSampleInterval"
    assert r["unknownKey"] == ["Nope"]
    assert csms.call("CP1", "ChangeConfiguration",
                     {"key": "MeterValueSampleInterval", "value": "abc"})["status"] == "Rejected"
    assert csms.call("CP1", "ChangeConfiguration",
                     {"key": "NumberOfConnectors", "value": "3"})["status"] == "Rejected"
    assert csms.call("CP1", "ChangeConfiguration",
                     {"key": "NoSuchKey", "value": "1"})["status"] == "NotSupported"
    sim.send("plug 1")
    sim.send("card 1 T1")
    sim.wait_status(lambda s: conn(s)["status"] == "Charging")
    assert csms.call("CP1", "ChangeConfiguration",
                     {"key": "MeterValueSampleInterval", "value": "1"})["status"] == "Accepted"
    first = csms.wait_rx("MeterValues", timeout=4)
    second = csms.wait_rx("MeterValues", timeout=4)
    assert first[3]["transactionId"] == second[3]["transactionId"]


def test_config_survives_a_restart(csms, tmp_path):
    state = str(tmp_path / "flash")
    with Sim(csms.url, "CP1", state=state, workdir=tmp_path) as sim:
        sim.wait_status(lambda s: s["accepted"])
        assert csms.call("CP1", "ChangeConfiguration",
                         {"key": "MeterValueSampleInterval", "value": "17"})["status"] == \
            "Accepted"
        sim.kill()
    with Sim(csms.url, "CP1", state=state, workdir=tmp_path) as sim:
        sim.wait_status(lambda s: s["accepted"])
        r = csms.call("CP1", "GetConfiguration", {"key": ["MeterValueSampleInterval"]})
        assert r["configurationKey"][0]["value"] == "17"


def test_central_system_restart_mid_session(csms, sim):
    sim.wait_status(lambda s: s["accepted"])
    sim.send("plug 1")
    sim.send("card 1 T9")
    s = sim.wait_status(lambda s: conn(s)["status"] == "Charging" and conn(s)["transaction"])
    txid = conn(s)["transaction"]
    csms.restart(kill=True)
    sim.wait_status(lambda s: not s["connected"], timeout=10)
    s = sim.wait_status(lambda s: s["connected"], timeout=20)
    assert conn(s)["status"] == "Charging" and conn(s)["transaction"] == txid
    sim.send("card 1 T9")
    stop = csms.wait_rx("StopTransaction", timeout=10)[3]
    assert stop["transactionId"] == txid
    assert sim.alive


GARBAGE = [
    ("not json at all", "FormationViolation"),
    ('{"object": true}', "FormationViolation"),
    ('[5, "g1", "Heartbeat", {}]', "FormationViolation"),
    ('[2, "g2", "FlyToTheMoon", {}]', "NotImplemented"),
    ('[2, "g3", "ReserveNow", {}]', "NotSupported"),
    ('[2, "g4", "RemoteStopTransaction", {"transactionId": "x"}]', "TypeConstraintViolation"),
    ('[2, "g5", "ChangeConfiguration", {"key": "HeartbeatInterval"}]',
     "OccurenceConstraintViolation"),
]


def test_garbage_from_central_system_is_answered_per_spec(csms, sim):
    sim.wait_status(lambda s: s["accepted"])
    for text, code in GARBAGE:
        mark = csms.mark()
        csms.raw("CP1", text)
        line = csms.wait_for(lambda ln: ln.get("dir") == "rx" and isinstance(ln.get("msg"), list)
                             and ln["msg"][0] == 4, since=mark)
        assert line["msg"][2] == code, (text, line)
        try:
            uid = json.loads(text)[1]
        except (ValueError, KeyError, TypeError):
            uid = "-1"
        assert line["msg"][1] == uid
    # Still up and serving.
    assert csms.call("CP1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
    s = sim.status()
    assert s["connected"] and sim.alive


def test_basic_auth_password(tmp_path):
    with Csms("--password", "s3cr3t-key-0123456789", workdir=tmp_path) as csms:
        with Sim(csms.url, "CP2", password="wrong", workdir=tmp_path) as bad:
            csms.wait_for(lambda ln: ln.get("event") == "rejected", timeout=10)
            assert not bad.status()["connected"]
        with Sim(csms.url, "CP2", password="s3cr3t-key-0123456789", workdir=tmp_path) as good:
            good.wait_status(lambda s: s["accepted"])


def test_energy_register_survives_a_power_cut(csms, tmp_path):
    """Energy.Active.Import.Register never goes backwards, even across a SIGKILL (issue 4)."""
    state = str(tmp_path / "flash")
    with Sim(csms.url, "CP1", state=state, workdir=tmp_path) as sim:
        sim.wait_status(lambda s: s["accepted"])
        sim.send("plug 1")
        sim.send("card 1 E1")
        sim.wait_status(lambda s: conn(s)["energy_wh"] >= 3, timeout=15)
        sim.send("card 1 E1")
        stop = csms.wait_rx("StopTransaction")[3]
        sim.kill()
    with Sim(csms.url, "CP1", state=state, workdir=tmp_path) as sim:
        s = sim.wait_status(lambda s: s["accepted"])
        assert conn(s)["energy_wh"] >= stop["meterStop"]
        sim.send("plug 1")
        sim.send("card 1 E2")
        start = csms.wait_rx("StartTransaction")[3]
        start = csms.wait_rx("StartTransaction")[3] if start["idTag"] != "E2" else start
        assert start["meterStart"] >= stop["meterStop"]


def _mem(sim):
    # `mem` answers on stdout before the `status` sent after it: status() sets it aside.
    sim.send("mem")
    sim.status()
    lines = [json.loads(x) for x in sim.other_stdout if x.startswith('{"mem"')]
    sim.other_stdout.clear()
    return lines[-1]["mem"]


def test_idle_heap_and_collection_threshold(csms, sim):
    """main.py makes the runtime collect after each 1/32 of the heap allocated; at idle the
    firmware allocates next to nothing, although the hardware loop wakes 20 times a second
    (asyncio's wait took 288 bytes of heap per wake-up before hal.timing.quiet_waits)."""
    sim.wait_status(lambda s: s["accepted"] and conn(s)["status"] == "Available")
    a = _mem(sim)
    assert abs(a["threshold"] * 32 - (a["alloc"] + a["free"])) < 1024
    b = _mem(sim)  # what the `mem` and `status` commands allocate themselves: b - a
    time.sleep(2)
    c = _mem(sim)
    assert (c["total"] - b["total"]) - (b["total"] - a["total"]) < 1000  # was 11 KB
    assert c["alloc"] - b["alloc"] < 500  # no garbage that outlives a collection
