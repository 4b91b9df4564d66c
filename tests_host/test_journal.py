"""The transaction journal on CPython: the payload codec, the record file under truncation, bit
flips and garbage, atomic rewrites, and the queue on top of it against the fake central system:
offline sessions across a reboot, a transaction running at a power cut, a lost ACK, errata 3.18,
the capacity budget (the offline capacity figure) and the flash bytes written per transaction."""
import asyncio
import json
import os
import random

import mpcheck
import pytest
from outbox import send_next

from ocpp import api, clock, jcodec, journal, metering, mvjson, store, txqueue


def wire(payload):
    # The payload as rpc sends it: txqueue hands a MeterValues in the compact form over as a
    # function writing its JSON text (see rpc._json_into), anything else as a dict.
    if callable(payload):
        b = bytearray(4096)
        return json.loads(bytes(b[: payload(b, 0)]))
    return dict(payload)


INFO = {"vendor": "Acme", "model": "Wallbox", "connectors": 2}
CS = {"url": "ws://cs", "cp_id": "CP1"}
TS = "2026-03-01T10:00:00Z"


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def mv(cid, wh, ts=TS, extra=()):
    sv = [{"value": str(wh), "context": "Sample.Periodic",
           "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
    sv.extend(extra)
    return {"connectorId": cid, "meterValue": [{"timestamp": ts, "sampledValue": sv}]}


# ---- the codec ----------------------------------------------------------------------------------

# MeterValues both the codec and the wire form are tried on: a phase with its unit, and two
# meterValues, one of them with an empty Raw value.
MV_SHARED = [
    mv(2, 99999, extra=[{"value": "16.0", "measurand": "Current.Import", "phase": "L1",
                         "unit": "A", "context": "Sample.Periodic"}]),
    {"connectorId": 1, "meterValue": [
        {"timestamp": TS, "sampledValue": [{"value": "1"}, {"value": "", "format": "Raw",
                                                            "location": "Outlet"}]},
        {"timestamp": "2026-03-01T10:00:01Z", "sampledValue": [{"value": "é"}]}]},
]


CODEC_CASES = [
    {"connectorId": 1, "idTag": "04A2B3C4D5E6F7", "meterStart": 12345, "timestamp": TS},
    {"meterStop": 22345, "timestamp": TS, "reason": "Local", "idTag": "04A2B3C4D5E6F7"},
    {"meterStop": 5, "timestamp": TS, "reason": "PowerLoss"},
    {"meterStop": 5, "timestamp": TS, "reason": "EVDisconnected",
     "transactionData": [mv(1, 3)["meterValue"][0], mv(1, 5)["meterValue"][0]]},
    *MV_SHARED,
    # The MeterValues shape with something the compact form cannot hold: JSON instead.
    {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [
        {"value": "1", "unit": "furlong"}]}]},
    {"connectorId": 1, "meterValue": [{"timestamp": TS + "x", "sampledValue": [{"value": "1"}]}]},
    # Dates parse() accepts but clock.fmt() never writes (Feb 30, 24:00), and a leap day.
    mv(1, 5, "2026-02-30T10:00:00Z"), mv(1, 5, "2026-03-01T24:00:00Z"),
    mv(1, 5, "2100-02-29T10:00:00Z"), mv(1, 5, "2024-02-29T23:59:59Z"),
    {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 1}]}]},
    {"connectorId": 300, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]},
    {"connectorId": 1, "meterValue": []},
    # Not our canonical timestamp form: kept as text.
    {"timestamp": "2026-03-01T10:00:00.123+01:00", "idTag": "é\x01\"\\", "x": [None, True, 1.5]},
    {"timestamp": "2026-03-01T10:00:00Z"},
    # A word or a timestamp inside a string value is text like any other.
    {"idTag": '"connectorId":', "x": '"timestamp":"' + TS + '"', "y": '"timestamp":"'},
    {},
]


@pytest.mark.parametrize("payload", CODEC_CASES)
def test_codec_round_trips(payload):
    b = jcodec.pack(payload)
    assert jcodec.unpack(b) == payload
    assert jcodec.unpack(memoryview(b)) == payload


@pytest.mark.parametrize("payload", CODEC_CASES)
def test_codec_writes_into_a_buffer_the_same_and_never_past_it(payload):
    # txqueue journals a Start or Stop through pack_into() into its record buffer; -1 (then
    # pack()) when it does not fit, the buffer neither grown nor written past its end.
    form = jcodec.pack(payload)
    buf = bytearray(len(form) + 3)
    assert jcodec.pack_into(payload, buf, 2) == len(form) + 2
    assert bytes(buf[2:-1]) == form
    for size in range(2, len(form) + 2):
        buf = bytearray(size)
        assert jcodec.pack_into(payload, buf, 2) == -1
        assert len(buf) == size


def test_codec_is_compact():
    assert len(jcodec.pack(mv(1, 12345))) <= 18  # ~185 bytes of JSON
    assert len(jcodec.pack(mv(1, 5, "2024-02-29T23:59:59Z"))) <= 18
    start = {"connectorId": 1, "idTag": "04A2B3C4D5E6F7", "meterStart": 12345, "timestamp": TS}
    assert len(jcodec.pack(start)) <= 36


@pytest.mark.parametrize("field", ["context", "format", "measurand", "phase", "location", "unit"])
def test_codec_holds_every_enumerated_value_and_only_those(field):
    # §7.33's enumerations, and near misses that must take the JSON form (and still round-trip).
    values = list(dict(jcodec.FIELDS)[field])
    for v in values + ["", " ", values[0] + " " + values[1], values[0][:-1], values[-1] + " ",
                       values[0][1:], "x" + values[0], 5]:
        p = {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [
            {"value": "7", field: v}]}]}
        b = jcodec.pack(p)
        assert jcodec.unpack(b) == p
        assert (b[0] == 0) == (v in values), v  # the compact form exactly for the listed ones


@pytest.mark.parametrize("bad", [b"\x1f\x00", b"\x00", b"{\x1e", b"[1]", b"{", b"\x00\x01\x01\x00",
                                 b"\x00\x01\x01" + bytes(5) + b"\x02\x00\x05123",
                                 b"\x00\x01\x01" + bytes(5) + b"\x01\x63\x01x"])
def test_codec_rejects_garbage(bad):
    with pytest.raises(ValueError):
        jcodec.unpack(bad)


# ---- the MeterValues form from the meter (metering.sample_into) and to the wire (mvjson.py) ----

MV_FORMS = [
    mv(1, 12345), mv(255, 0, "2106-02-07T06:28:15Z"), mv(0, 5, "1970-01-01T00:00:00Z"),
    *MV_SHARED,
    # Value text JSON must escape: never from our meter, still written right.
    {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [
        {"value": 'a"b\\c\x01\x1f', "measurand": "SoC", "unit": "Percent"}]}]},
]


@pytest.mark.parametrize("payload", MV_FORMS)
def test_meter_values_json_is_the_payload_with_its_transaction_id(payload):
    form = jcodec.pack(payload)
    assert form[0] == 0  # the MeterValues form
    for txid in (-1, 0, 7, 2147483647):
        out = bytearray(2048)
        end = mvjson.meter_values_json(b"xy" + form, 2, txid, out, 3)
        assert json.loads(bytes(out[3:end])) == dict(payload, transactionId=txid)
        assert not any(out[end:])
        for size in range(3, end):  # too short by any amount: -1, and the buffer never grows
            short = bytearray(size)
            assert mvjson.meter_values_json(form, 0, txid, short, 3) == -1
            assert len(short) == size


class Readings:
    """A meter callback: the readings by measurand (a missing one reads None)."""

    def __init__(self, values):
        self.values = values

    def __call__(self, reason, cid, item):
        return self.values.get(item) if reason == api.GET_METER_VALUE else None


CSL = "Energy.Active.Import.Register,Current.Import.L1,Voltage,Power.Active.Import,SoC"


@pytest.mark.parametrize("context", ["Sample.Periodic", "Sample.Clock", "Transaction.End"])
def test_sample_into_writes_what_sample_makes_packed(flash, context):
    # The compact form straight from the meter is byte for byte what packing sample()'s dict
    # gives: the journal, the wire and the StopTransaction data cannot tell them apart.
    readings = Readings({"Energy.Active.Import.Register": 12345.7, "Current.Import.L1": 16.5,
                         "Voltage": 230, "Power.Active.Import": -3680})
    info = dict(INFO, measurands=CSL.replace(".L1", ""))
    cp = api.init(info, CS, readings)
    cp.config.set("MeterValuesSampledData", CSL, False)
    secs = clock.parse(TS)
    b = bytearray(256)
    end = metering.sample_into(cp, 2, context, "MeterValuesSampledData", secs, b, 2)
    mv_ = metering.sample(cp, 2, context, "MeterValuesSampledData", TS)
    assert bytes(b[2:end]) == jcodec.pack({"connectorId": 2, "meterValue": [mv_]})
    assert [sv["value"] for sv in mv_["sampledValue"]] == ["12345", "16.5", "230", "-3680"]
    assert mv_["sampledValue"][1]["phase"] == "L1"
    readings.values = {}  # the meter gives none of them: nothing to send
    assert metering.sample_into(cp, 2, context, "MeterValuesSampledData", secs, b, 2) == 2
    readings.values = {"Voltage": 230}
    assert metering.sample_into(cp, 2, context, "MeterValuesSampledData", secs, b, 20) > 20
    assert metering.sample_into(cp, 2, context, "MeterValuesSampledData", secs, b, 250) == -1


def test_queue_takes_the_dict_way_for_what_the_form_cannot_hold(flash):
    # A measurand beyond the form's table (config accepts what the meter says it reads).
    cp = api.init(dict(INFO, measurands="Voltage,Energy.Active.Import.Register.Extra"), CS,
                  Readings({"Voltage": 230, "Energy.Active.Import.Register.Extra": 1}))
    cp.config.set("MeterValuesSampledData", "Voltage,Energy.Active.Import.Register.Extra", False)
    tx = api.Transaction(1, "TAG", 0, TS)
    assert metering.sample_into(cp, 1, "Sample.Periodic", "MeterValuesSampledData",
                                clock.parse(TS), cp.txq.body(), 2) == -1
    sent = []

    async def call(action, payload, timeout_ms=None):
        sent.append(wire(payload))
        return {}

    cp.call = call
    metering.queue(cp, 1, tx, "Sample.Periodic", "MeterValuesSampledData", clock.parse(TS))
    metering.queue(cp, 1, tx, "Sample.Foo", "MeterValuesSampledData", clock.parse(TS))
    while len(cp.txq):
        assert run(send_next(cp.txq))
    for p in sent:
        svs = p["meterValue"][0]["sampledValue"]
        assert [sv["value"] for sv in svs] == ["230", "1"] and p["transactionId"] == -1
    assert [p["meterValue"][0]["sampledValue"][0]["context"] for p in sent] == [
        "Sample.Periodic", "Sample.Foo"]


def test_clock_fmt_into_writes_in_place():
    import time

    for t in (0, 86399, 951782400, 1709164800, 1767225600, 4102444799, 4294967295):
        b = bytearray(b"<" * 24)
        assert clock.fmt_into(b, 2, t) == 22
        want = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        assert b == b"<<" + want.encode() + b"<<" and clock.fmt(t) == want


# ---- the record file ----------------------------------------------------------------------------

@pytest.fixture
def flash(monkeypatch, tmp_path):
    monkeypatch.setattr(store, "dir", str(tmp_path))
    return tmp_path


def records(j):
    out = []
    with j.reader() as r:
        while True:
            rec = r.next()
            if rec is None:
                return out
            out.append(rec)


def filled(flash, n=12):
    logs = []
    j = journal.Journal("j.bin", logs.append)
    rng = random.Random(1)
    for i in range(n):
        j.append(0xA1 + i % 5, bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))))
    return j, records(j), logs


def test_records_round_trip(flash):
    j, recs, logs = filled(flash)
    assert len(recs) == 12 and not logs
    assert all(j.read(off) == (k, b) for off, k, b in recs)
    assert j.read(recs[3][0] + 1) is None
    assert os.path.getsize(j.path) == j.size == j.written


def test_a_torn_tail_is_dropped_at_every_cut(flash):
    j, recs, _ = filled(flash)
    data = open(j.path, "rb").read()
    ends = {off + 7 + len(b) for off, _, b in recs}
    for cut in range(len(data)):
        with open(j.path, "wb") as f:
            f.write(data[:cut])
        logs = []
        j2 = journal.Journal("j.bin", logs.append)
        got = records(j2)
        assert got == [r for r in recs if r[0] + 7 + len(r[2]) <= cut]
        # Torn bytes are reported, whole records never.
        assert bool(logs) == (cut not in ends and cut != 0), (cut, logs)


def test_bit_flips_lose_only_the_damaged_record(flash):
    j, recs, _ = filled(flash, 30)
    data = open(j.path, "rb").read()
    rng = random.Random(7)
    for _ in range(200):
        bad = bytearray(data)
        spots = [rng.randrange(len(bad)) for _ in range(rng.randrange(1, 4))]
        for p in spots:
            bad[p] ^= 1 << rng.randrange(8)
        with open(j.path, "wb") as f:
            f.write(bad)
        logs = []
        got = records(journal.Journal("j.bin", logs.append))
        intact = [r for r in recs if not any(r[0] <= p < r[0] + 7 + len(r[2]) for p in spots)]
        assert [r for r in got if r in recs] == intact  # every intact record, in order
        assert len(got) == len(intact)  # nothing made up from the damage
        assert logs and "damaged" in logs[0]


@pytest.mark.parametrize("content", [b"", b"\0" * 100, bytes(range(256)) * 40, b"\xa1\xff"])
def test_empty_or_garbage_journal(flash, content):
    path = flash / "j.bin"
    path.write_bytes(content)
    logs = []
    assert records(journal.Journal("j.bin", logs.append)) == []
    assert bool(logs) == bool(content)


def test_a_rewrite_cut_short_leaves_the_old_journal(flash):
    j, recs, _ = filled(flash)
    j.begin()
    j.add(0xA1, b"new")  # ...and the power fails before commit(): a stray .new file
    j._new.close()
    j2 = journal.Journal("j.bin", print)
    assert not os.path.exists(j2.path + ".new")
    assert records(j2) == recs
    j2.begin()
    assert j2.add(0xA2, b"x") == 0
    j2.commit()
    assert records(journal.Journal("j.bin", print)) == [(0, 0xA2, b"x")]


# ---- the queue ---------------------------------------------------------------------------------

class Meter:
    def __init__(self, wh=1000):
        self.wh = wh

    def __call__(self, reason, cid, value):
        if reason == api.GET_METER_VALUE:
            return self.wh if value == "Energy.Active.Import.Register" else None
        return True


def boot(meter=None, info=INFO, logs=None):
    """A charge point on the same flash: a reboot."""
    return api.init(info, CS, meter or Meter(), (logs.append if logs is not None else None))


def tx_calls(csms):
    return [(a, p) for a, p in csms.calls
            if a in ("StartTransaction", "MeterValues", "StopTransaction")]


def test_offline_session_then_reboot_delivers_everything_once(csms):
    csms.down = True
    meter = Meter()

    async def offline():
        cp = boot(meter)
        cp.config.change("AllowOfflineTxForUnknownId", "true")
        cp.config.change("MeterValueSampleInterval", "1")
        cp.start()
        sess = cp.session_open(1)
        assert await sess.authorize("OFF1", 100) == api.ACCEPTED
        cp.connector_event(1, api.EV_PLUGGED)
        assert await sess.start_transaction(meter.wh, 1, 50) == api.TIMEOUT
        for _ in range(3):
            meter.wh += 7
            await asyncio.sleep(1.05)
        assert await sess.stop_transaction(meter.wh, 50) == api.TIMEOUT
        assert len(cp.txq) >= 4
        cp._task.cancel()  # the power goes: nothing is flushed, nothing is said

    async def online():
        csms.down = False
        cp = boot(meter)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted" and len(cp.txq) == 0, 10)
        await cp.stop()

    run(offline())
    run(online())
    msgs = tx_calls(csms)
    assert msgs[0][0] == "StartTransaction" and msgs[-1][0] == "StopTransaction"
    assert [a for a, _ in msgs].count("StartTransaction") == 1
    assert [a for a, _ in msgs].count("StopTransaction") == 1
    assert {p["transactionId"] for a, p in msgs[1:]} == {1}
    energy = [int(p["meterValue"][0]["sampledValue"][0]["value"]) for a, p in msgs
              if a == "MeterValues"]
    assert len(energy) >= 2 and energy == sorted(energy)
    assert msgs[-1][1]["meterStop"] == meter.wh and msgs[-1][1]["reason"] == "Local"


def test_power_loss_ends_the_running_transaction_once(csms):
    meter = Meter(500)

    async def charging():
        cp = boot(meter)
        cp.config.change("MeterValueSampleInterval", "1")
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        sess = cp.session_open(2)
        sess.accept("T1")
        cp.connector_event(2, api.EV_PLUGGED)
        assert await sess.start_transaction(meter.wh, 2, 2000) == api.ACCEPTED
        meter.wh = 612
        await csms.wait_for(lambda: csms.of("MeterValues"), 5)
        await csms.wait_for(lambda: len(cp.txq) == 0)
        meter.wh = 700  # drawn after the last sample: lost with the power, unless the meter
        cp._task.cancel()  # keeps its own register (see below)

    run(charging())
    last_mv = csms.of("MeterValues")[-1]["meterValue"][0]
    meter.wh = 0  # a meter that forgot its count: the journal's last reading stands

    async def reboot():
        logs = []
        cp = boot(meter, logs=logs)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted" and len(cp.txq) == 0)
        assert any("was running at power loss" in m for m in logs)
        assert cp.connectors[2].finishing  # a cable still in reads Finishing
        await cp.stop()

    run(reboot())
    assert len(csms.of("StartTransaction")) == 1
    (stop,) = csms.of("StopTransaction")
    assert stop["reason"] == "PowerLoss" and stop["transactionId"] == 1
    assert stop["meterStop"] == int(last_mv["sampledValue"][0]["value"]) == 612
    assert stop["timestamp"] >= last_mv["timestamp"] and "idTag" not in stop


def test_checkpoints_without_periodic_samples_bound_the_energy_lost(csms, monkeypatch):
    # No MeterValueSampleInterval: the sampling task still wakes once a checkpoint period to
    # journal the reading, which a power cut then ends the transaction with.
    monkeypatch.setattr(txqueue, "_CHECKPOINT_MS", 400)
    monkeypatch.setattr(api, "_NAP_MS", 450)
    meter = Meter(500)

    async def charging():
        cp = boot(meter)
        cp.config.change("MeterValueSampleInterval", "0")
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        sess = cp.session_open(1)
        sess.accept("T1")
        assert await sess.start_transaction(meter.wh, 1, 2000) == api.ACCEPTED
        for wh in (520, 540, 560):
            meter.wh = wh
            await asyncio.sleep(0.5)
        cp._task.cancel()
        return [r for r in records(cp.txq.j) if r[1] == txqueue.METER]

    checkpoints = run(charging())
    assert len(checkpoints) >= 2  # one per period, each with the reading then
    meter.wh = 0  # a meter that forgot its count

    async def reboot():
        cp = boot(meter)
        cp.start()
        await csms.wait_for(lambda: csms.of("StopTransaction"))
        await cp.stop()

    run(reboot())
    assert not csms.of("MeterValues")
    assert csms.of("StopTransaction")[0]["meterStop"] == 560


def test_power_loss_uses_a_meter_that_kept_its_register(csms):
    meter = Meter(500)

    async def charging():
        cp = boot(meter)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        sess = cp.session_open(1)
        sess.accept("T1")
        assert await sess.start_transaction(meter.wh, 1, 2000) == api.ACCEPTED
        cp._task.cancel()

    run(charging())
    meter.wh = 640  # e.g. lib/ocpp/register.py: saved before the power went

    async def reboot():
        cp = boot(meter)
        cp.start()
        await csms.wait_for(lambda: csms.of("StopTransaction"))
        await cp.stop()

    run(reboot())
    assert csms.of("StopTransaction")[0]["meterStop"] == 640


def test_a_lost_ack_resends_and_the_new_id_is_used(csms, tmp_path):
    csms.silent.add("MeterValues")  # keep the MeterValues queued behind the Start

    async def first():
        cp = boot()
        cp.config.change("MeterValueSampleInterval", "1")
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        sess = cp.session_open(1)
        sess.accept("T1")
        await sess.start_transaction(10, 1, 2000)
        await csms.wait_for(lambda: csms.of("MeterValues"), 5)
        cp._task.cancel()

    run(first())
    # The power went between the central system's answer and its ACK record: cut the journal
    # back to before the ACK.
    path = tmp_path / "txjournal.bin"
    data = path.read_bytes()
    j = journal.Journal("txjournal.bin", print)
    acks = [off for off, kind, _ in records(j) if kind == txqueue.ACK]
    path.write_bytes(data[:acks[0]])
    csms.silent.clear()

    async def reboot():
        cp = boot()
        cp.start()
        await csms.wait_for(lambda: csms.of("StopTransaction"), 10)
        await csms.wait_for(lambda: len(cp.txq) == 0)
        await cp.stop()

    run(reboot())
    starts = csms.of("StartTransaction")
    assert len(starts) == 2 and starts[0] == starts[1]  # the same message, sent again
    # The fake central system is not idempotent: the second answer (id 2) is the one used.
    assert {p["transactionId"] for p in csms.of("StopTransaction")} == {2}


def test_a_discarded_start_leaves_transaction_id_minus_one(csms):
    csms.errors["StartTransaction"] = "InternalError"

    async def main():
        cp = boot()
        cp.config.change("TransactionMessageAttempts", "1")
        cp.config.change("TransactionMessageRetryInterval", "1")
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        sess = cp.session_open(1)
        sess.accept("T1")
        await sess.start_transaction(10, 1, 300)
        await sess.stop_transaction(20, 300)
        await csms.wait_for(lambda: len(cp.txq) == 0, 5)
        await cp.stop()

    run(main())
    assert [p["transactionId"] for p in csms.of("StopTransaction")] == [-1]  # errata 3.18


def test_damaged_records_on_boot_are_dropped_and_the_rest_delivered(csms, tmp_path):
    csms.down = True

    async def offline():
        cp = boot()
        cp.start()
        for i in range(4):
            tx = api.Transaction(1, "T%d" % i, i * 10, TS)
            cp.txq.put("StartTransaction", {"connectorId": 1, "idTag": tx.id_tag,
                                            "meterStart": tx.meter_start, "timestamp": TS}, tx)
            cp.txq.put("StopTransaction", {"meterStop": i * 10 + 5, "timestamp": TS,
                                           "reason": "Local"}, tx)
        cp._task.cancel()

    run(offline())
    path = tmp_path / "txjournal.bin"
    data = bytearray(path.read_bytes())
    recs = records(journal.Journal("txjournal.bin", print))
    victim = recs[2]  # T1's StartTransaction
    data[victim[0] + 9] ^= 0x40
    path.write_bytes(data + b"\xa1\x30\x00")  # and a torn record at the end
    csms.down = False
    logs = []

    async def online():
        cp = boot(logs=logs)
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted" and len(cp.txq) == 0)
        await cp.stop()

    run(online())
    assert sum("damaged" in m for m in logs) == 2
    assert [p["idTag"] for p in csms.of("StartTransaction")] == ["T0", "T2", "T3"]
    # T1's Stop still reaches the central system, with transactionId -1 (errata 3.18).
    assert [p["transactionId"] for p in csms.of("StopTransaction")] == [1, -1, 2, 3]
    assert not os.path.exists(str(path) + ".bad")


def offline_day(cp, n_tx, n_mv, cid=1):
    """n_tx whole transactions of n_mv periodic energy samples each, queued with no link."""
    wh = 123456
    for i in range(n_tx):
        t0 = clock.parse(TS) + i * 7200
        tx = api.Transaction(cid, "04A2B3C4D5E6%02d" % (i % 100), wh, clock.fmt(t0))
        cp.txq.put("StartTransaction", {"connectorId": cid, "idTag": tx.id_tag,
                                        "meterStart": wh, "timestamp": tx.start_time}, tx)
        for k in range(n_mv):
            wh += 250
            tx.meter_last = wh
            cp.txq.put("MeterValues", mv(cid, wh, clock.fmt(t0 + 60 * (k + 1))), tx)
        cp.txq.put("StopTransaction", {"meterStop": wh, "timestamp": clock.fmt(t0 + 3600),
                                       "reason": "Local", "idTag": tx.id_tag}, tx)


def capacity(flash_dir):
    """How many periodic samples per transaction 100 offline transactions can carry in 64 KB."""
    best = 0
    for n_mv in range(8, 40):
        path = os.path.join(flash_dir, "txjournal.bin")
        if os.path.exists(path):
            os.remove(path)
        cp = boot()
        offline_day(cp, 100, n_mv)
        if cp.txq.j.size > txqueue.CAPACITY or cp.txq.mvs < 100 * n_mv:
            return best
        best = n_mv
    return best


def test_capacity_100_offline_transactions_in_64_kb(flash, capsys):
    n = capacity(str(flash))
    with capsys.disabled():
        print("\n  offline capacity: 100 transactions with %d periodic energy samples each "
              "(Start, %d MeterValues, Stop) in %d bytes" % (n, n, txqueue.CAPACITY))
    assert n >= 20


def test_a_full_journal_drops_the_oldest_meter_values_only(flash):
    logs = []
    cp = boot(logs=logs)
    offline_day(cp, 150, 20)  # ~100 KB worth: it cannot all fit
    q = cp.txq
    assert q.j.size <= txqueue.CAPACITY
    assert any("oldest MeterValues dropped" in m for m in logs)
    # Every Start and Stop is still there; what was dropped are the oldest samples.
    kinds = [k for _, k, _ in records(q.j) if k in (txqueue.START, txqueue.STOP)]
    assert kinds.count(txqueue.START) == 150 and kinds.count(txqueue.STOP) == 150
    values = [int(jcodec.unpack(memoryview(b)[2:])["meterValue"][0]["sampledValue"][0]["value"])
              for _, k, b in records(q.j) if k == txqueue.METER_VALUES]
    assert values == list(range(values[0], 123456 + 150 * 20 * 250 + 1, 250))
    assert values[0] > 123456 + 250  # the oldest went
    assert q.count == len([1 for _, k, _ in records(q.j) if k in (0xA1, 0xA2, 0xA3)])


def test_a_dropped_head_is_not_sent_from_memory(flash):
    # The message queued into an empty queue is sent from RAM rather than read back from flash;
    # when a full journal drops it before it goes, what is sent must follow the journal.
    cp = boot(info=dict(INFO, journal_bytes=1500))
    q = cp.txq
    sent = []

    async def call(action, payload, timeout_ms=None):
        sent.append((action, wire(payload)))
        return {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}

    cp.call = call
    tx = api.Transaction(1, "TAG", 100, TS)
    q.put("StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 100,
                               "timestamp": TS}, tx)
    assert run(send_next(q)) and not len(q)
    t0 = clock.parse(TS)
    for k in range(120):  # no link meanwhile: the oldest samples make room for the newest
        q.put("MeterValues", mv(1, 101 + k, clock.fmt(t0 + k)), tx)
    assert q.j.size <= 1500
    while len(q):
        assert run(send_next(q))
    values = [int(p["meterValue"][0]["sampledValue"][0]["value"]) for a, p in sent[1:]]
    assert 101 not in values and values == list(range(values[0], 221))
    assert all(p["transactionId"] == 7 for a, p in sent[1:])


def test_a_payload_is_sent_as_queued_with_its_transaction_id(flash):
    cp = boot()
    sent = []

    async def call(action, payload, timeout_ms=None):
        sent.append((action, wire(payload)))
        return {"transactionId": 9, "idTagInfo": {"status": "Accepted"}}

    cp.call = call
    tx = api.Transaction(1, "TAG", 100, TS)
    start = {"connectorId": 1, "idTag": "TAG", "meterStart": 100, "timestamp": TS}
    q = cp.txq
    q.put("StartTransaction", dict(start), tx)
    q.put("MeterValues", mv(1, 150), tx)  # behind the Start: read back from the journal
    run(send_next(q))
    run(send_next(q))
    q.put("MeterValues", mv(1, 200), tx)  # into an empty queue
    run(send_next(q))
    assert sent == [("StartTransaction", start),
                    ("MeterValues", dict(mv(1, 150), transactionId=9)),
                    ("MeterValues", dict(mv(1, 200), transactionId=9))]


def test_an_undecodable_message_is_dropped_and_the_queue_moves_on(flash):
    # Intact on flash (its CRC holds) but not a payload: logged, dropped, the next one goes.
    j = journal.Journal("txjournal.bin", print)
    j.append(txqueue.METER_VALUES, b"\x01\x00\x00\x01\x01")
    j.append(txqueue.METER_VALUES, b"\x01\x00" + jcodec.pack(mv(1, 9)))
    logs, sent = [], []
    cp = boot(logs=logs)

    async def call(action, payload, timeout_ms=None):
        sent.append(wire(payload))
        return {}

    cp.call = call
    assert cp.txq.ready() and len(cp.txq) == 2  # (the journal is read on first use)
    assert run(send_next(cp.txq)) and sent == [] and len(cp.txq) == 1
    assert any("unreadable; dropped" in m for m in logs)
    assert run(send_next(cp.txq)) and sent == [dict(mv(1, 9), transactionId=-1)]
    assert not len(cp.txq)


def test_ready_says_when_send_next_has_work(flash):
    from ocpp.rpc import CallError

    cp = boot()
    answers = [CallError("InternalError"), {}]

    async def call(action, payload, timeout_ms=None):
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    cp.call = call
    cp.config.set("TransactionMessageRetryInterval", 3600, False)
    q = cp.txq
    assert not q.ready() and not run(send_next(q))
    q.put("MeterValues", mv(1, 5), api.Transaction(1, "TAG", 0, TS))
    assert q.ready()
    assert run(send_next(q))  # refused: retried in an hour
    assert len(q) == 1 and not q.ready() and not run(send_next(q))
    q._retry_at = None  # the hour has passed
    assert q.ready() and run(send_next(q)) and not len(q) and not q.ready()


def test_a_long_meter_values_keeps_the_compact_form(flash):
    # Longer than the queue's record buffer: packed apart, still in the compact form.
    sent = []

    async def call(action, payload, timeout_ms=None):
        sent.append(wire(payload))
        return {}

    extra = [{"value": "%d.125" % (230 + k), "context": "Sample.Periodic", "measurand": "Voltage",
              "phase": ("L1-N", "L2-N", "L3-N")[k % 3], "unit": "V"} for k in range(40)]
    p = mv(1, 777, extra=extra)
    boot().txq.put("MeterValues", p, api.Transaction(1, "TAG", 100, TS))
    cp = boot()  # after a reboot: read back from the journal
    cp.call = call
    (off, kind, body), = [r for r in records(journal.Journal("txjournal.bin", print))
                          if r[1] == txqueue.METER_VALUES]
    assert len(body) > 256 and body[2] == 0  # the MeterValues form, not JSON
    run(send_next(cp.txq))
    assert sent == [dict(p, transactionId=-1)]


def test_online_journal_stays_small_and_wear_per_transaction(csms, capsys):
    meter = Meter()

    async def main():
        cp = boot(meter)
        cp.config.change("MeterValueSampleInterval", "1")
        cp.start()
        await csms.wait_for(lambda: cp.registration == "Accepted")
        biggest = 0
        for i in range(20):
            sess = cp.session_open(1)
            sess.accept("T%d" % i)
            await sess.start_transaction(meter.wh, 1, 2000)
            for _ in range(12):
                meter.wh += 3
                tx = sess.tx
                tx.meter_last = meter.wh
                cp.txq.put("MeterValues", mv(1, meter.wh, clock.now_iso()), tx)
            await sess.stop_transaction(meter.wh, 2000)
            sess.close()
            await csms.wait_for(lambda: len(cp.txq) == 0)
            biggest = max(biggest, cp.txq.j.size)
        await cp.stop()
        return cp.txq.j.written / 20, biggest

    per_tx, biggest = run(main())
    with capsys.disabled():
        print("\n  online: %.0f journal bytes written per transaction (Start, 12 MeterValues, "
              "Stop, their ACKs and rewrites); the file never exceeded %d bytes"
              % (per_tx, biggest))
    assert biggest < 2 * journal_min_dead()
    assert per_tx < 1200


def journal_min_dead():
    return txqueue.MIN_DEAD


def test_offline_backlog_drains_with_bounded_rewrites(csms, capsys):
    # 100 offline transactions reach the central system: one ACK record per message, and
    # rewrites that copy about half the backlog in all (a rewrite waits until dead >= 2 x live).
    csms.down = True
    cp = boot()
    offline_day(cp, 100, 14)
    queued, before = len(cp.txq), cp.txq.j.written
    csms.down = False

    async def main():
        cp.start()
        await csms.wait_for(lambda: len(cp.txq) == 0, 60)
        await cp.stop()

    run(main())
    after = cp.txq.j.written - before
    assert len(csms.of("StartTransaction")) == 100 and len(csms.of("MeterValues")) == 1400
    with capsys.disabled():
        print("\n  offline backlog: %d bytes journaled for 100 transactions (%d messages), then "
              "%d more (ACKs and rewrites) to deliver them: %.0f bytes per transaction in all"
              % (before, queued, after, (before + after) / 100))
    acks = 11 * queued + 6 * 100  # the Start ACKs carry local id and transactionId too
    assert after - acks < before * 0.75


def test_the_same_code_on_micropython(tmp_path):
    r = mpcheck.run("mp_journal_check.py", tmp_path)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr


def test_littlefs_power_cut_at_every_block_write(tmp_path):
    # The append file stays open (journal.py): each record must be committed by its flush(),
    # as close() did. On littlefs over a RAM block device, cut at every block written; the
    # same run with flush() left out must fail, or the check could not tell.
    runs = [mpcheck.run("mp_lfs_journal_check.py", *arg, heap="64m", cwd=tmp_path)
            for arg in ((), ("noflush",))]
    out = [r.stdout + r.stderr for r in runs]  # (MicroPython prints tracebacks on stdout)
    assert runs[0].returncode == 0 and out[0].startswith("OK "), out[0]
    assert int(out[0].split()[1]) > 50  # cuts checked
    assert runs[1].returncode != 0 and "AssertionError: (" in out[1], out[1]
