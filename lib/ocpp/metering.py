# Meter values beyond the periodic samples: clock-aligned data (MeterValuesAlignedData every
# ClockAlignedDataInterval, aligned to midnight UTC, §9.1.5) and the transactionData of
# StopTransaction (StopTxnSampledData / StopTxnAlignedData, §4.10, §9.1.25, §9.1.27); and the
# sampling itself, which all of them and the periodic samples (api.py) share.
import asyncio
import struct

from . import clock, jcodec, mvjson
from .wsmask import int_into
from .compat import Waker, const
from .config import listed

_STOP_DATA_MAX = const(8)  # meterValue elements kept for StopTransaction: the first + the latest
_IDLE_MS = const(10000)  # aligned(): the longest asleep (a clock set meanwhile is seen by then)
# The unit of a measurand by its first words (§7.31, §7.45); the first match wins, none: no unit.
_UNITS = (
    ("Energy.Reactive", "varh"),
    ("Energy", "Wh"),
    ("Power.Reactive", "var"),
    ("Power.Factor", None),
    ("Power", "W"),
    ("Current", "A"),
    ("Voltage", "V"),
    ("Temperature", "Celsius"),
    ("SoC", "Percent"),
)


def sample(cp, cid, context, key, ts=None):
    """One meterValue element (§7.33) with the measurands of the CSL configuration key, or None
    when the meter gives none of them. An item such as Current.Import.L1 is asked of the
    callback whole and sent as measurand plus phase."""
    values = None
    for item, m, phase, unit, _, whole in _items(cp, key):
        v = cp.meter(cid, item)
        if v is None:
            continue
        sv = {"value": str(int(v) if whole else v), "context": context, "measurand": m}
        if phase:
            sv["phase"] = phase
        if unit:
            sv["unit"] = unit
        if values is None:
            values = [sv]
        else:
            values.append(sv)
    if values is None:
        return None
    return {"timestamp": ts or clock.now_iso(), "sampledValue": values}


def sample_into(cp, cid, context, key, secs, b, i):
    """What queue() sends: sample() for connector cid as a whole MeterValues payload (one
    meterValue, stamped secs) in jcodec's MeterValues form, written into b from i without a
    dict, list or string on the way -> where it ends; i when the meter gave none of the
    measurands; -1 when this form cannot hold it (sample() then)."""
    ctx = jcodec.context_code(context)
    items = _items(cp, key)
    for it in items:
        if it[4] is None:  # a measurand, phase or unit without a code
            return -1
    if ctx < 0 or not 0 <= cid < 256 or not 0 <= secs <= 0xFFFFFFFF:
        return -1
    n = 0
    j = i + 8  # behind 0, connectorId, 1 meterValue, its time and its count of values
    try:
        for it in items:
            v = cp.meter(cid, it[0])
            if v is not None:
                j = _value_into(b, j, it[4], ctx, v, it[5])
                n += 1
        if n:
            struct.pack_into(">BBBIB", b, i, 0, cid, 1, secs, n)
            return j
        return i
    except (IndexError, ValueError):  # b too short, or a value text over 255 bytes
        return -1


def _value_into(b, j, codes, ctx, v, whole):
    # One sampled value into b at j: its bits and indexes (the context's added), then the
    # value as sample() writes it -> where it ends.
    b[j] = codes & 0xFF | 1  # bit 0: a context
    b[j + 1] = ctx
    j += 2
    codes >>= 8
    while codes:  # its indexes (+ 1 each: jcodec.codes())
        b[j] = (codes & 0xFF) - 1
        codes >>= 8
        j += 1
    if whole:  # as in sample()
        v = int(v)
    if type(v) is int:
        end = int_into(b, j + 1, v)
    else:
        v = str(v).encode()
        end = j + 1 + len(v)
        if end > len(b):
            raise IndexError
        b[j + 1 : end] = v
    if end - j > 256:
        raise ValueError
    b[j] = end - j - 1
    return end


def queue(cp, cid, tx, context, key, secs):
    """Sample connector cid and queue the MeterValues of transaction tx (the periodic and the
    clock-aligned ones), stamped secs: written straight into the journal's record
    (sample_into()), the dict way (sample()) when it cannot be."""
    q = cp.txq
    n = sample_into(cp, cid, context, key, secs, q.body(), 2)
    if n > 2:
        q.put("MeterValues", None, tx, n)
    elif n < 0:
        mv = sample(cp, cid, context, key, clock.fmt(secs))
        if mv:
            q.put("MeterValues", {"connectorId": cid, "meterValue": [mv]}, tx)


def _items(cp, key):
    # The key's items as (item, measurand, phase, unit, jcodec.codes() of them, whole: sent as
    # an int), parsed once per value of the key: the split and the lookups would otherwise be
    # paid at every sample.
    csl = cp.config.get(key)
    memo = cp.sampling.get(key)
    if memo is not None and memo[0] == csl:
        return memo[1]
    items = []
    ms = cp.config.measurands
    for item in csl.split(","):
        if not item:
            continue
        m, phase = item, None
        if not isinstance(ms, str) and item in ms:
            m = item = ms[ms.index(item)]  # the integrator's string, kept anyway: not a copy
        elif not listed(item, ms):
            dot = item.rfind(".")
            m, phase = item[:dot], item[dot + 1 :]
        unit = None
        for prefix, u in _UNITS:
            if m.startswith(prefix):
                unit = u
                break
        # §7.33 allows decimals; an energy register counts whole Wh.
        whole = m.startswith("Energy")
        items.append((item, m, phase, unit, jcodec.codes(m, phase, unit), whole))
    items = tuple(items)
    cp.sampling[key] = (csl, items)
    return items


def keep_for_stop(tx, mv):
    """Remember one meterValue element for the StopTransaction's transactionData. Bounded: a
    long transaction keeps its Transaction.Begin element and the most recent ones."""
    if mv is None:
        return
    data = tx.stop_data
    if data is None:
        data = tx.stop_data = []
    if len(data) >= _STOP_DATA_MAX:
        data.pop(1)
    data.append(mv)


def begin(cp, c, tx):
    """At the start of a transaction: the Transaction.Begin element for the stop data; and the
    items of its periodic samples parsed (_items()) now, soon after the collection at the plug
    (connector.event()): they then lie at the bottom of the heap with the transaction's other
    objects instead of landing, at its first sample, wherever allocation had got to, splitting
    the free space (with MeterValueSampleInterval 0 they wait unused until rest())."""
    _items(cp, "MeterValuesSampledData")
    if cp.config.get("StopTxnSampledData"):
        keep_for_stop(tx, sample(cp, c.id, "Transaction.Begin", "StopTxnSampledData"))


def end(cp, c, tx):
    """transactionData for StopTransaction (or None): what was kept, plus Transaction.End."""
    if cp.config.get("StopTxnSampledData"):
        keep_for_stop(tx, sample(cp, c.id, "Transaction.End", "StopTxnSampledData"))
    data = tx.stop_data
    tx.stop_data = None
    return data


def rest(cp):
    """A transaction ended: when none is left running, drop what sampling keeps only to be
    fast (the items parsed per key, the JSON of their shapes: ~0.96 KB for four measurands on
    the 64-bit port). The next transaction makes them again, after the collection at its plug."""
    for c in cp.connectors:
        if c.tx is not None:
            return
    cp.sampling.clear()
    mvjson.forget()


def wake(cp):
    """Something the metering tasks depend on changed (a configuration key, a transaction
    ended): they look again now."""
    for w in cp.meter_wakers:
        w.wake()


async def nap(w, ms):
    """Sleep up to ms on the Waker w (of cp.meter_wakers)."""
    try:
        await w.wait(max(0, ms))
    finally:
        w.done()


def align(cp):
    """Start the clock-aligned task if ClockAlignedDataInterval asks for one and none runs (at
    start and after a change of configuration): with the default, 0, there is no such task."""
    if cp.aligned_task is None and cp.config.get("ClockAlignedDataInterval") > 0:
        cp.aligned_task = asyncio.create_task(aligned(cp))


async def aligned(cp):
    """One task for the whole charger: at each clock-aligned boundary, a Sample.Clock
    MeterValues for every connector in a transaction, stamped with the boundary time. It ends
    when the interval is set to 0 (align() starts it again)."""
    last = None
    w = Waker()
    cp.meter_wakers.append(w)
    try:
        while True:
            interval = cp.config.get("ClockAlignedDataInterval")
            if interval <= 0:
                cp.aligned_task = None
                return
            if not clock.synced:
                last = None
                await nap(w, _IDLE_MS)  # boot's setting of the clock wakes us at once (wake())
                continue
            now = clock.now()
            slot = now - now % interval
            if last is None:
                last = slot  # the first boundary counts from when we started watching
            if slot != last:
                last = slot
                _at_boundary(cp, slot)
            # Wake shortly after the next boundary.
            await nap(w, min((slot + interval - now) * 1000 + 50, _IDLE_MS))
    finally:
        cp.meter_wakers.remove(w)


def _at_boundary(cp, slot):
    ts = clock.fmt(slot)
    for c in cp.connectors[1:]:
        tx = c.tx
        if tx is None or tx.ended:
            continue
        queue(cp, c.id, tx, "Sample.Clock", "MeterValuesAlignedData", slot)
        if cp.config.get("StopTxnAlignedData"):
            keep_for_stop(tx, sample(cp, c.id, "Sample.Clock", "StopTxnAlignedData", ts))
