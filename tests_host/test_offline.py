"""OCTT 1.6 power-failure, offline and local-list test cases (octt16.txt §2.13, §2.14, §2.17),
played with the firmware on MicroPython (tools/sim) against the local central system, which is
taken away (connections refused, the link dropped) and brought back; the firmware is killed with
SIGKILL and started again on the same flash. docs/conformance.md lists them. Also: damaged state
files at boot, and the central system's idempotent StartTransaction."""
import re
import time

from harness import Csms, Sim
from live import (  # noqa: F401  (fixtures)
    call, central, charging, configure, conn, rx_after, sim, statuses, wait_status_sent)


def send_list(central, version, update, entries=None):
    p = {"listVersion": version, "updateType": update}
    if entries is not None:
        p["localAuthorizationList"] = entries
    return call(central, "SendLocalList", p)["status"]


def version(central):
    return call(central, "GetLocalListVersion")["listVersion"]


def answer(central, uid, timeout=10):
    """The central system's CALLRESULT payload to the CALL with unique id uid."""
    return central.wait_for(lambda m: m.get("dir") == "tx" and isinstance(m.get("msg"), list)
                            and m["msg"][0] == 3 and m["msg"][1] == uid, timeout=timeout)["msg"][2]


def go_offline(central, sim):
    central.set(refuse=True)
    try:
        central.disconnect("CP1")
    except AssertionError:
        pass  # not connected anyway
    sim.wait_status(lambda s: not s["connected"])


def go_online(central, sim, timeout=30):
    central.set(refuse=False)
    sim.wait_status(lambda s: s["connected"], timeout=timeout)


def journaled(sim, tag, timeout=10):
    """Wait for the firmware's log line saying the StartTransaction for tag is on flash."""
    pat = re.compile(r"StartTransaction L\d+ journaled \(connector \d+, idTag %s\)" % tag)
    deadline = time.monotonic() + timeout
    while not pat.search(sim.stderr_text()):
        assert time.monotonic() < deadline, sim.stderr_text()[-2000:]
        time.sleep(0.05)


def energy(mv_payload):
    return [int(v["value"]) for m in mv_payload["meterValue"] for v in m["sampledValue"]
            if v.get("measurand", "Energy.Active.Import.Register")
            == "Energy.Active.Import.Register"]


def drained(sim, timeout=30):
    sim.wait_status(lambda s: s["connected"] and s["queued"] == 0, timeout=timeout)


# ---- power failure (§2.13) ----------------------------------------------------------------------

def test_tc_032_1_backup_power_stops_before_going_down(csms):
    # The CPython engine against the fake central system: a charger with a backup supply calls
    # api.stop_by_charger(cp, c, "PowerLoss") for each connector when its power-fail input fires.
    import asyncio

    from ocpp import api

    def hw(reason, cid, value):
        return 800 if reason == api.GET_METER_VALUE and value.startswith("Energy") else True

    async def before():
        cp = api.init({"vendor": "A", "model": "B"}, {"url": "ws://cs", "cp_id": "CP1"}, hw)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        sess = cp.session_open(1)
        sess.accept("PF")
        cp.connector_event(1, api.EV_PLUGGED)
        assert await sess.start_transaction(700, 1, 2000) == api.ACCEPTED
        cp.connector_event(1, api.EV_CHARGING)
        await csms.wait_for(lambda: cp.connectors[1].reported == ("Charging", "NoError"))
        await api.stop_by_charger(cp, cp.connectors[1], "PowerLoss")  # the power is failing
        await csms.wait_for(lambda: cp.connectors[1].reported == ("Finishing", "NoError"))
        cp._task.cancel()

    async def after():
        cp = api.init({"vendor": "A", "model": "B"}, {"url": "ws://cs", "cp_id": "CP1"}, hw)
        cp.connector_event(1, api.EV_PLUGGED)
        cp.start()
        await csms.wait_for(lambda: len(csms.of("BootNotification")) == 2)
        await csms.wait_for(lambda: cp.connectors[1].reported is not None)
        await cp.stop()

    asyncio.run(asyncio.wait_for(before(), 20))
    (stop,) = csms.of("StopTransaction")
    assert stop["reason"] == "PowerLoss" and stop["meterStop"] == 800
    n = len(csms.of("StatusNotification"))
    asyncio.run(asyncio.wait_for(after(), 20))
    after_boot = [(p["connectorId"], p["status"]) for p in csms.of("StatusNotification")[n:]]
    assert (0, "Available") in after_boot
    assert (1, "Preparing") in after_boot or (1, "Finishing") in after_boot
    assert len(csms.of("StopTransaction")) == 1  # nothing left to end after the reboot


def test_tc_032_2_power_failure_transaction_stopped_after_reboot(central, tmp_path):
    state = str(tmp_path / "flash")
    with Sim(central.url, "CP1", state=state, workdir=tmp_path) as s:
        s.wait_status(lambda st: st["accepted"])
        configure(central, MeterValueSampleInterval=1)
        txid = charging(central, s, "PF2")
        s.wait_status(lambda st: conn(st)["energy_wh"] >= 2)
        mark = central.mark()
        rx_after(central, "MeterValues", mark, timeout=15)  # at least one sample after some energy
        s.kill()  # power cut, no backup supply
    last = max(energy(m[3])[-1] for m in central.rx_calls("MeterValues"))
    mark = central.mark()
    with Sim(central.url, "CP1", state=state, workdir=tmp_path) as s:
        rx_after(central, "BootNotification", mark, timeout=15)
        s.send("plug 1")  # the cable is still in
        stop = rx_after(central, "StopTransaction", mark, timeout=15)[3]
        assert stop["reason"] == "PowerLoss" and stop["transactionId"] == txid
        assert stop["meterStop"] >= last
        wait_status_sent(central, "Finishing", 1, since=mark)
        drained(s)
        sent = statuses(central, 0, since=mark)
        assert sent and sent[0] == "Available"
    assert len(central.rx_calls("StartTransaction")) == 1
    assert len({m[3]["timestamp"] for m in central.rx_calls("StopTransaction")}) == 1


def test_tc_034_unavailable_survives_power_failure(central, tmp_path):
    state = str(tmp_path / "flash")
    with Sim(central.url, "CP1", state=state, workdir=tmp_path) as s:
        s.wait_status(lambda st: st["accepted"])
        mark = central.mark()
        r = call(central, "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
        assert r["status"] == "Accepted"
        wait_status_sent(central, "Unavailable", 0, since=mark)
        wait_status_sent(central, "Unavailable", 1, since=mark)
        s.kill()
    mark = central.mark()
    with Sim(central.url, "CP1", state=state, workdir=tmp_path) as s:
        rx_after(central, "BootNotification", mark, timeout=15)
        wait_status_sent(central, "Unavailable", 0, since=mark)
        wait_status_sent(central, "Unavailable", 1, since=mark)
        assert "Available" not in statuses(central, 1, since=mark)


# ---- offline (§2.14) ---------------------------------------------------------------------------

def test_tc_036_connection_loss_during_transaction(central, sim):
    resent = []
    configure(central, MeterValueSampleInterval=1)
    txid = charging(central, sim, "CL1")
    rx_after(central, "MeterValues", central.mark(), timeout=15)
    go_offline(central, sim)
    time.sleep(4.5)
    assert sim.status()["queued"] >= 3
    mark = central.mark()
    go_online(central, sim)
    time.sleep(2)
    mvs = []
    for m in central.rx_calls("MeterValues"):
        # Delivery is at least once: a message sent as the link dropped, and never answered, is
        # sent again on reconnection, identical. That is the same sample, not a repeated one.
        if not mvs or m[3] != mvs[-1]:
            mvs.append(m[3])
        else:
            resent.append(m[3])
    after = [ln["msg"][3] for ln in central.lines[mark:] if ln.get("dir") == "rx"
             and isinstance(ln.get("msg"), list) and ln["msg"][0] == 2
             and ln["msg"][2] == "MeterValues"]
    assert len(after) >= 5 and all(p["transactionId"] == txid for p in mvs)
    stamps = [p["meterValue"][0]["timestamp"] for p in mvs]
    # Chronological, queued ones first, one MeterValueSampleInterval apart: no gap, no repeat.
    from ocpp import clock

    secs = [clock.parse(t) for t in stamps]
    assert [b - a for a, b in zip(secs, secs[1:])] == [1] * (len(secs) - 1), (stamps, resent)
    assert len(resent) <= 1  # only the one in flight when the link went down
    values = [energy(p)[0] for p in mvs]
    assert values == sorted(values)


def test_tc_037_1_offline_start_valid_id_tag(central, sim):
    configure(central, LocalAuthorizeOffline=True, LocalAuthListEnabled=True,
              AllowOfflineTxForUnknownId=False)
    assert send_list(central, 1, "Full", [{"idTag": "LOCAL1",
                                           "idTagInfo": {"status": "Accepted"}}]) == "Accepted"
    go_offline(central, sim)
    sim.send("plug 1")
    sim.send("card 1 LOCAL1")  # known from the local list only
    journaled(sim, "LOCAL1")
    mark = central.mark()
    go_online(central, sim)
    start = rx_after(central, "StartTransaction", mark, timeout=15)
    assert start[3]["idTag"] == "LOCAL1"
    assert answer(central, start[1])["idTagInfo"]["status"] == "Accepted"
    i = central.lines.index(next(ln for ln in central.lines[mark:] if ln.get("msg") == start))
    wait_status_sent(central, "Charging", 1, since=i)
    assert not any(m[2] == "Authorize" for m in central.rx_calls())


def offline_invalid_start(central, sim, tag):
    central.set(reject_tags=[tag])
    configure(central, AllowOfflineTxForUnknownId=True, LocalAuthorizeOffline=True)
    go_offline(central, sim)
    sim.send("plug 1")
    sim.send("card 1 %s" % tag)  # unknown, so allowed offline
    journaled(sim, tag)
    sim.wait_status(lambda s: conn(s)["energy_wh"] > 0, timeout=15)  # energy flows offline
    mark = central.mark()
    go_online(central, sim)
    start = rx_after(central, "StartTransaction", mark, timeout=15)
    assert answer(central, start[1])["idTagInfo"]["status"] == "Invalid"
    return start, central.lines.index(next(ln for ln in central.lines[mark:]
                                           if ln.get("msg") == start))


def test_tc_037_2_offline_start_invalid_id_tag_suspends(central, sim):
    configure(central, StopTransactionOnInvalidId=False)
    start, i = offline_invalid_start(central, sim, "BADTAG2")
    wait_status_sent(central, "Charging", 1, since=i)
    wait_status_sent(central, "SuspendedEVSE", 1, since=i)
    time.sleep(1)
    assert not central.rx_calls("StopTransaction")
    e = conn(sim.status())["energy_wh"]
    time.sleep(1.5)
    assert conn(sim.status())["energy_wh"] == e  # no more energy for an invalid idTag


def test_tc_037_3_offline_start_invalid_id_tag_stops(central, sim):
    configure(central, StopTransactionOnInvalidId=True)
    start, i = offline_invalid_start(central, sim, "BADTAG3")
    wait_status_sent(central, "Charging", 1, since=i)
    stop = rx_after(central, "StopTransaction", i, timeout=15)[3]
    assert stop["reason"] == "DeAuthorized"
    assert stop["transactionId"] == answer(central, start[1])["transactionId"]
    wait_status_sent(central, "Finishing", 1, since=i)


def test_tc_038_offline_stop_transaction(central, sim):
    txid = charging(central, sim, "OS1")
    go_offline(central, sim)
    sim.send("card 1 OS1")
    sim.wait_status(lambda s: conn(s)["status"] == "Finishing" and s["queued"] >= 1)
    mark = central.mark()
    go_online(central, sim)
    stop = rx_after(central, "StopTransaction", mark, timeout=15)[3]
    assert stop["transactionId"] == txid and stop.get("reason", "Local") == "Local"
    wait_status_sent(central, "Finishing", 1, since=mark)


def test_tc_039_offline_transaction(central, sim):
    configure(central, AllowOfflineTxForUnknownId=True, LocalAuthorizeOffline=True)
    go_offline(central, sim)
    sim.send("plug 1")
    sim.send("card 1 OFF39")
    journaled(sim, "OFF39")
    time.sleep(0.5)
    sim.send("card 1 OFF39")
    sim.wait_status(lambda s: conn(s)["status"] == "Finishing")
    sim.send("unplug 1")
    sim.wait_status(lambda s: conn(s)["status"] == "Available" and s["queued"] >= 2)
    mark = central.mark()
    go_online(central, sim)
    start = rx_after(central, "StartTransaction", mark, timeout=15)
    stop = rx_after(central, "StopTransaction", mark, timeout=15)[3]
    assert answer(central, start[1])["idTagInfo"]["status"] == "Accepted"
    assert stop.get("reason", "Local") == "Local"
    assert stop["transactionId"] == answer(central, start[1])["transactionId"]
    drained(sim)


def test_offline_session_then_power_cut_reaches_the_central_system_whole(central, tmp_path):
    # MicroOcpp's bug: a session started and stopped offline, then a reset, lost its Start.
    state = str(tmp_path / "flash")
    with Sim(central.url, "CP1", state=state, workdir=tmp_path) as s:
        s.wait_status(lambda st: st["accepted"])
        configure(central, AllowOfflineTxForUnknownId=True, MeterValueSampleInterval=1)
        go_offline(central, s)
        s.send("plug 1")
        s.send("card 1 GONE1")
        journaled(s, "GONE1")
        s.wait_status(lambda st: conn(st)["energy_wh"] >= 3, timeout=15)
        s.send("card 1 GONE1")
        s.wait_status(lambda st: conn(st)["status"] == "Finishing")
        s.kill()
    central.set(refuse=False)
    with Sim(central.url, "CP1", state=state, workdir=tmp_path) as s:
        drained(s)
    (start,) = [m[3] for m in central.rx_calls("StartTransaction")]
    (stop,) = [m[3] for m in central.rx_calls("StopTransaction")]
    mvs = [m[3] for m in central.rx_calls("MeterValues")]
    assert start["idTag"] == "GONE1" and stop["reason"] == "Local" and len(mvs) >= 2
    assert {p["transactionId"] for p in mvs} == {stop["transactionId"]}
    values = [start["meterStart"]] + [energy(p)[0] for p in mvs] + [stop["meterStop"]]
    assert values == sorted(values)


def test_damaged_state_files_at_boot(central, tmp_path):
    state = tmp_path / "flash"
    with Sim(central.url, "CP1", state=str(state), connectors=2, workdir=tmp_path) as s:
        s.wait_status(lambda st: st["accepted"])
        configure(central, AllowOfflineTxForUnknownId=True, HeartbeatInterval=77)
        assert send_list(central, 3, "Full", [{"idTag": "L1",
                                               "idTagInfo": {"status": "Accepted"}}]) == "Accepted"
        go_offline(central, s)
        for cid, tag in ((1, "D1"), (2, "D2")):
            s.send("plug %d" % cid)
            s.send("card %d %s" % (cid, tag))
            journaled(s, tag)
            s.send("card %d %s" % (cid, tag))
            s.wait_status(lambda st: conn(st, cid - 1)["status"] == "Finishing")
        s.kill()
    journal = state / "txjournal.bin"
    data = bytearray(journal.read_bytes())
    data[20] ^= 0x10  # inside D1's StartTransaction
    journal.write_bytes(bytes(data) + b"\xa2\x40\x00\x01")  # and a torn last record
    (state / "config.json").write_bytes((state / "config.json").read_bytes()[:-3])
    (state / "locallist.bin").write_bytes((state / "locallist.bin").read_bytes()[:30])
    central.set(refuse=False)
    with Sim(central.url, "CP1", state=str(state), connectors=2, workdir=tmp_path) as s:
        drained(s)
        assert call(central, "GetLocalListVersion")["listVersion"] == 0
        log = s.stderr_text()
    assert "damaged or torn bytes" in log and "config.json is corrupt" in log
    assert "locallist.bin is damaged" in log
    assert [m[3]["idTag"] for m in central.rx_calls("StartTransaction")] == ["D2"]
    stops = [m[3] for m in central.rx_calls("StopTransaction")]
    assert [p["transactionId"] for p in stops][0] == -1 and len(stops) == 2  # errata 3.18


def test_central_system_start_transaction_is_idempotent(tmp_path):
    import asyncio
    import json

    from websockets.asyncio.client import connect

    p = {"connectorId": 1, "idTag": "T", "meterStart": 5, "timestamp": "2026-01-01T00:00:00Z"}

    async def go(url):
        async with connect(url + "/CPX", subprotocols=["ocpp1.6"]) as ws:
            ids = []
            for i, payload in enumerate((p, p, dict(p, meterStart=6))):
                await ws.send(json.dumps([2, "s%d" % i, "StartTransaction", payload]))
                ids.append(json.loads(await ws.recv())[2]["transactionId"])
            return ids

    with Csms("--ping-interval", "0", workdir=tmp_path) as cs:
        a, b, c = asyncio.run(go(cs.url))
    assert a == b != c


# ---- Local Authorization List (§2.17) -----------------------------------------------------------

def test_tc_042_1_local_list_disabled(central, sim):
    configure(central, LocalAuthListEnabled=False)
    assert version(central) == -1


def test_tc_042_2_local_list_version_empty(central, sim):
    assert send_list(central, 1, "Full") == "Accepted"
    assert version(central) == 0


def test_tc_043_send_local_list(central, sim):
    assert send_list(central, 1, "Full", [{"idTag": "LL1", "idTagInfo": {"status": "Accepted"}}]) \
        == "Accepted"
    assert send_list(central, 2, "Differential",
                     [{"idTag": "LL2", "idTagInfo": {"status": "Accepted"}}]) == "Accepted"
    configure(central, LocalPreAuthorize=True)
    mark = central.mark()
    sim.send("plug 1")
    sim.send("card 1 LL2")  # on the list: starts without asking the central system
    rx_after(central, "StartTransaction", mark, timeout=15)
    assert not [m for m in central.rx_calls("Authorize")]


def test_tc_043_2_send_local_list_version_mismatch(central, sim):
    entry = [{"idTag": "VM1", "idTagInfo": {"status": "Accepted"}}]
    assert send_list(central, 2, "Full", entry) == "Accepted"
    assert version(central) == 2
    assert send_list(central, 5, "Differential", entry) == "Accepted"
    assert version(central) == 5
    assert send_list(central, 4, "Differential", entry) == "VersionMismatch"
    assert version(central) == 5


def test_tc_043_3_send_local_list_failed(central, sim):
    # The state in which it fails: more entries than SendLocalListMaxLength in one message.
    r = call(central, "GetConfiguration", {"key": ["SendLocalListMaxLength"]})
    n = int(r["configurationKey"][0]["value"]) + 1
    entries = [{"idTag": "F%03d" % i, "idTagInfo": {"status": "Accepted"}} for i in range(n)]
    assert send_list(central, 2, "Full", entries) == "Failed"


def test_tc_008_start_with_id_in_local_list(central, sim):
    configure(central, LocalPreAuthorize=True, AuthorizationCacheEnabled=False,
              LocalAuthListEnabled=True, AuthorizeRemoteTxRequests=True)
    assert version(central) == 0
    assert send_list(central, 1, "Full", [{"idTag": "RS1", "idTagInfo": {"status": "Accepted"}}]) \
        == "Accepted"
    mark = central.mark()
    sim.send("plug 1")
    wait_status_sent(central, "Preparing", 1, since=mark)
    r = call(central, "RemoteStartTransaction", {"idTag": "RS1", "connectorId": 1})
    assert r["status"] == "Accepted"
    start = rx_after(central, "StartTransaction", mark, timeout=15)
    assert answer(central, start[1])["idTagInfo"]["status"] == "Accepted"
    wait_status_sent(central, "Charging", 1, since=mark)
    assert not central.rx_calls("Authorize")  # the local list authorised it
