# Meter values beyond the periodic samples: clock-aligned data (MeterValuesAlignedData every
# ClockAlignedDataInterval, aligned to midnight UTC, §9.1.5) and the transactionData of
# StopTransaction (StopTxnSampledData / StopTxnAlignedData, §4.10, §9.1.25, §9.1.27).
from . import clock
from .compat import const, sleep_ms

_STOP_DATA_MAX = const(8)  # meterValue elements kept for StopTransaction: the first + the latest


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
    """At the start of a transaction: the Transaction.Begin element for the stop data."""
    if cp.config.get("StopTxnSampledData"):
        keep_for_stop(tx, cp.sample(c.id, "Transaction.Begin", "StopTxnSampledData"))


def end(cp, c, tx):
    """transactionData for StopTransaction (or None): what was kept, plus Transaction.End."""
    if cp.config.get("StopTxnSampledData"):
        keep_for_stop(tx, cp.sample(c.id, "Transaction.End", "StopTxnSampledData"))
    data = tx.stop_data
    tx.stop_data = None
    return data


async def aligned(cp):
    """One task for the whole charger: at each clock-aligned boundary, a Sample.Clock
    MeterValues for every connector in a transaction, stamped with the boundary time."""
    last = None
    while True:
        interval = cp.config.get("ClockAlignedDataInterval")
        if interval <= 0 or not clock.synced:
            last = None
            await sleep_ms(1000)
            continue
        now = clock.now()
        slot = now - now % interval
        if last is None:
            last = slot  # the first boundary counts from when we started watching
        if slot != last:
            last = slot
            _at_boundary(cp, slot)
        # Wake shortly after the next boundary; at most 1 s asleep so a changed interval
        # takes effect at once.
        await sleep_ms(min((slot + interval - now) * 1000 + 50, 1000))


def _at_boundary(cp, slot):
    ts = clock.fmt(slot)
    for c in cp.connectors[1:]:
        tx = c.tx
        if tx is None or tx.ended:
            continue
        mv = cp.sample(c.id, "Sample.Clock", "MeterValuesAlignedData", ts)
        if mv:
            cp.txq.put("MeterValues", {"connectorId": c.id, "meterValue": [mv]}, tx)
        if cp.config.get("StopTxnAlignedData"):
            keep_for_stop(tx, cp.sample(c.id, "Sample.Clock", "StopTxnAlignedData", ts))
