# The integrator's API, in the shape of Zephyr's OCPP library (include/zephyr/net/ocpp.h):
#
#   cp = api.init(cp_info, cs_info, callback)     # ocpp_init()
#   cp.start()                                    # inside a running asyncio loop
#   sess = cp.session_open(connector)             # ocpp_session_open()
#   status = await sess.authorize(tag, 5000)      # ocpp_authorize() -> idTagInfo status
#   status = await sess.start_transaction(wh, connector, 5000)   # ocpp_start_transaction()
#   status = await sess.stop_transaction(wh, 5000, "Local")      # ocpp_stop_transaction()
#   sess.close()                                  # ocpp_session_close()
#
# callback(reason, connector, value) is told, and must return quickly:
#   GET_METER_VALUE  value = measurand name -> the current reading (a number) or None
#   START_CHARGING   value = a Session already authorised for the remote start's idTag; the
#                    integrator waits for the plug and calls value.start_transaction()
#   STOP_CHARGING    value = the stop reason; stop drawing energy now (the library sends the
#                    StopTransaction itself, reading the energy register through the callback)
#   UNLOCK_CONNECTOR value = None -> True (unlocked), False (failed), None (no lock)
# The hardware's state reaches the library through cp.connector_event(connector, EV_..., info).
import asyncio

from . import auth, clock, metering
from .chargepoint import GET_METER_VALUE, ChargePoint  # noqa: F401  (re-exported)
from .compat import Waker, const, sleep_ms, ticks_add, ticks_diff, ticks_ms
from .config import ENERGY
from .rpc import CallError
from .connector import (  # noqa: F401
    EV_CHARGING,
    EV_PLUGGED,
    EV_SUSPENDED,
    EV_UNPLUGGED,
    EVSE_RESUMED,
    EVSE_SUSPENDED,
    FAULT,
    FAULT_CLEARED,
    Transaction,
)

# The callback's reasons (GET_METER_VALUE is the engine's own).
START_CHARGING = const(2)
STOP_CHARGING = const(3)
UNLOCK_CONNECTOR = const(4)
RESET = const(5)  # value: "Soft" or "Hard"; the integrator restarts the charger
ACCEPTED = "Accepted"
TIMEOUT = "Timeout"  # no answer in time and no local rule allowed it
# The longest a sampling task sleeps: a little over txqueue's checkpoint period, so that each
# such wake finds a checkpoint due (txqueue.checkpoint()).
_NAP_MS = const(60100)


def init(cp_info, cs_info, callback, log=None):
    """cp_info: vendor, model, and optionally serial, box_serial, fw_version, iccid, imsi,
    meter_serial, meter_type, connectors (default 1), measurands (what the meter can read),
    profiles (optional profile modules, e.g. ("localauth",)), journal_bytes (the flash budget
    of the transaction message journal, default 65536).
    cs_info: url (ws:// or wss://), cp_id, and optionally auth_key, ca_file (PEM or DER),
    call_timeout_ms, max_message."""
    return OCPP(cp_info, cs_info, callback, log)


class OCPP(ChargePoint):
    """The engine (chargepoint.py) with the integrator's side: sessions, hardware events, the
    callback, DataTransfer."""

    def sample(self, cid, context, key, ts=None):
        """One meterValue element (§7.33) of the measurands of the CSL key: metering.sample()."""
        return metering.sample(self, cid, context, key, ts)

    def session_open(self, connector=None):
        return Session(self, connector)

    def connector_event(self, connector, event, info=None):
        c = self.connectors[connector]
        c.event(event, info)
        if event == EV_UNPLUGGED and c.tx is not None:
            # §9.1.23: unplugging at the EV ends the transaction when so configured; otherwise
            # it stays open as SuspendedEV.
            if self.config.get("StopTransactionOnEVSideDisconnect"):
                asyncio.create_task(stop_by_charger(self, c, "EVDisconnected"))
                if self.config.get("UnlockConnectorOnEVSideDisconnect"):
                    self.tell(UNLOCK_CONNECTOR, connector, None)

    def tell(self, reason, connector, value):
        """The integrator's callback -> its answer; False when it raised: that is logged, and
        the library goes on (a bug of the integrator's must not stop it)."""
        try:
            return self.callback(reason, connector, value)
        except Exception as e:
            self.log("api: callback(%d, %d, %r) failed: %r" % (reason, connector, value, e))
            return False

    async def data_transfer(self, vendor_id, message_id=None, data=None, timeout_ms=5000):
        """DataTransfer.req from the charger (§4.3) -> the central system's answer payload, or
        {"status": TIMEOUT} when it could not be delivered."""
        p = {"vendorId": vendor_id}
        if message_id is not None:
            p["messageId"] = message_id
        if data is not None:
            p["data"] = data
        try:
            return await self.call("DataTransfer", p, timeout_ms)
        except CallError as e:
            return {"status": TIMEOUT if e.code in ("Offline", "Timeout") else "Rejected"}

    def data_transfer_handler(self, vendor_id, fn):
        """fn(message_id, data) -> the DataTransfer.conf payload ({"status": ..., "data": ...})."""
        self.vendors[vendor_id] = fn

    def on_tx_result(self, item):
        tx = item.tx
        if isinstance(item.result, dict) and item.result.get("idTagInfo"):
            # §3.5.1: every idTagInfo received updates the cache.
            tag = item.payload.get("idTag") or tx.id_tag
            if tag:  # a StopTransaction of an earlier boot may carry none
                self.auth_cache.update(tag, item.result["idTagInfo"])
        if item.action != "StartTransaction":
            return
        if not tx.ended:
            self.connectors[tx.connector].update()  # no longer an incipient transaction
        if not isinstance(item.result, dict):
            return
        info = item.result.get("idTagInfo") or {}
        tx.parent_id_tag = info.get("parentIdTag")
        if info.get("status") != ACCEPTED and not tx.ended:
            # §9.1.24: the central system refused the idTag of a running transaction.
            asyncio.create_task(_refused(self, self.connectors[tx.connector], tx))


class Session:
    """One use of one connector, from authorisation to the end of its transaction."""

    def __init__(self, cp, connector=None):
        self.cp = cp
        self.connector = None
        self.id_tag = None
        self.parent_id_tag = None
        self.tx = None
        self.closed = False
        if connector:
            self._bind(connector)

    def _bind(self, cid):
        c = self.cp.connectors[cid]
        if c.session is not None and c.session is not self:
            raise ValueError("connector %d is in use" % cid)
        self.connector = cid
        c.session = self

    async def authorize(self, id_tag, timeout_ms=5000):
        """Authorize (§4.1, §3.5): the local list, the cache, the central system, and the
        offline rules; returns the idTagInfo status, or TIMEOUT when nothing could decide."""
        status, self.parent_id_tag = await auth.authorize(self.cp, id_tag, timeout_ms)
        if status == ACCEPTED:
            self.accept(id_tag)
        return status

    def accept(self, id_tag):
        """Treat id_tag as authorised without asking (a remote start with
        AuthorizeRemoteTxRequests false, §5.11); authorize() calls it for an accepted one."""
        self.id_tag = id_tag
        if self.connector:
            # The connector is Preparing until the transaction starts or ConnectionTimeOut
            # (§9.1.6) runs out, which returns it to Available and ends this authorisation.
            c = self.cp.connectors[self.connector]
            c.authorized_tag = id_tag
            c.auth_deadline = ticks_add(ticks_ms(), self.cp.config.get("ConnectionTimeOut") * 1000)
            c.update()
            asyncio.create_task(_connection_timeout(self, c))

    async def wait_plugged(self, poll_ms=100):
        """True once the cable is in, False if the authorisation expired or the session ended."""
        c = self.cp.connectors[self.connector]
        while not self.closed and c.authorized_tag is not None:
            if c.plugged:
                return True
            await sleep_ms(poll_ms)
        return False

    async def start_transaction(self, meter_wh, connector=None, timeout_ms=5000):
        """StartTransaction.req (§4.8). The transaction starts locally at once; the message is
        queued and the answer awaited up to timeout_ms. Returns the idTagInfo status, or
        TIMEOUT while it is still on its way (the transaction goes on either way)."""
        cp = self.cp
        if self.id_tag is None:
            return "NotAuthorized"
        if connector and self.connector != connector:
            self._bind(connector)
        c = cp.connectors[self.connector]
        if not c.available_for_start():
            return "Rejected"
        tx = Transaction(c.id, self.id_tag, int(meter_wh), clock.now_iso())
        tx.parent_id_tag = self.parent_id_tag
        self.tx = c.tx = tx
        c.authorized_tag = None
        c.finishing = False
        payload = {"connectorId": c.id, "idTag": self.id_tag, "meterStart": tx.meter_start,
                   "timestamp": tx.start_time}
        item = cp.txq.put("StartTransaction", payload, tx)
        metering.begin(cp, c, tx)
        asyncio.create_task(_metering(cp, c, tx))
        c.update()
        r = await _wait(item, timeout_ms)
        if isinstance(r, dict):
            return (r.get("idTagInfo") or {}).get("status", "Invalid")
        return TIMEOUT if r is None else r

    async def stop_transaction(self, meter_wh, timeout_ms=5000, reason="Local", id_tag=None):
        """StopTransaction.req (§4.10) with meterStop and reason; the transaction ends locally at
        once. Returns "Accepted" when the central system took it, else TIMEOUT (it stays
        queued and will be delivered)."""
        cp = self.cp
        tx = self.tx
        if tx is None or tx.ended:
            return "NoTransaction"
        c = cp.connectors[tx.connector]
        tx.ended = True
        tx.stop_reason = reason
        metering.wake(cp)  # its sampling task ends now rather than at its next sample
        payload = {"meterStop": int(meter_wh), "timestamp": clock.now_iso(), "reason": reason}
        if id_tag:
            payload["idTag"] = id_tag
        elif reason == "Local":
            payload["idTag"] = tx.id_tag
        data = metering.end(cp, c, tx)
        if data:
            payload["transactionData"] = data
        item = cp.txq.put("StopTransaction", payload, tx)
        c.tx = None
        c.finishing = c.plugged
        c.info = None
        c.update()
        # A ChangeAvailability answered Scheduled is due now (§5.2).
        if c.pending_inoperative:
            cp.set_operative(c, False)
        z = cp.connectors[0]
        if z.pending_inoperative and all(x.tx is None for x in cp.connectors[1:]):
            cp.set_operative(z, False)
        r = await _wait(item, timeout_ms)
        metering.rest(cp)  # (once its MeterValues ahead of the Stop were sent, if they were)
        return ACCEPTED if isinstance(r, dict) else (TIMEOUT if r is None else r)

    def close(self):
        self.closed = True
        if self.connector:
            c = self.cp.connectors[self.connector]
            if c.session is self:
                c.session = None
                if c.authorized_tag is not None and c.tx is None:
                    c.authorized_tag = None
                    c.update()


async def _wait(item, timeout_ms):
    # -> the item's result, None when it was not answered in time (the message stays queued).
    # Asleep on a Waker, which txqueue wakes with the answer: an asyncio.Event under wait_for_ms
    # costs a task and a runner coroutine per wait (~1.2 KB, 64-bit) at a busy moment.
    if item.result is None:
        w = item.waiters = Waker()
        end = ticks_add(ticks_ms(), timeout_ms)
        try:
            while item.result is None:
                timeout_ms = ticks_diff(end, ticks_ms())
                if timeout_ms <= 0:
                    break
                await w.wait(timeout_ms)
                w.done()
        finally:
            w.done()  # cancelled asleep: wake() must not touch this task any more
    return item.result


async def _refused(cp, c, tx):
    # §3.5.4, errata 3.17. The status the transaction started with (Charging) is reported first,
    # as TC_037_2/3 expect (a status is only reported once it is stable), then with
    # StopTransactionOnInvalidId the transaction stops (DeAuthorized), else only the energy does.
    for _ in range(30):
        if c.reported is not None and c.reported[0] == c.status:
            break
        await sleep_ms(100)
    if c.tx is not tx or tx.ended:
        return
    if cp.config.get("StopTransactionOnInvalidId"):
        await stop_by_charger(cp, c, "DeAuthorized")
        return
    cp.tell(STOP_CHARGING, c.id, "DeAuthorized")
    c.event(EVSE_SUSPENDED)


async def _connection_timeout(sess, c):
    while c.authorized_tag is not None and c.session is sess:
        left = ticks_diff(c.auth_deadline, ticks_ms())
        if left <= 0:
            sess.cp.log("api: ConnectionTimeOut on connector %d" % c.id)
            sess.close()
            return
        await sleep_ms(min(left, 1000))


async def _metering(cp, c, tx):
    # Sampled meter values every MeterValueSampleInterval from the start of the transaction
    # (§9.1.19). A sample is due one interval after the previous one was due, not after it was
    # taken, and is stamped on that grid, so the timestamps keep the interval exactly (TC_036)
    # instead of drifting with the loop's latency or jittering across a second boundary. Asleep
    # until the next sample is due (a minute at most, for the energy checkpoint): a change of
    # configuration and the end of the transaction wake it (metering.wake()), so a new interval
    # takes effect at once without polling for it.
    due = ticks_ms()
    stamp = None  # UTC second of the next sample while on schedule
    last = None  # UTC second of the sample before
    w = Waker()
    cp.meter_wakers.append(w)
    try:
        while True:
            interval = cp.config.get("MeterValueSampleInterval")
            wait = _NAP_MS
            if interval > 0:
                wait = min(ticks_diff(ticks_add(due, interval * 1000), ticks_ms()), wait)
            await metering.nap(w, wait)
            if tx.ended:
                return
            cp.txq.checkpoint(tx)  # the reading a power cut would end the transaction with
            was, interval = interval, cp.config.get("MeterValueSampleInterval")
            if interval <= 0 or was <= 0:
                due, stamp = ticks_ms(), None  # no samples, or the first grid starts now
                continue
            late = ticks_diff(ticks_ms(), due) - interval * 1000
            if late < 0:
                continue
            if late < interval * 1000:
                due = ticks_add(due, interval * 1000)
            else:  # far behind (a stalled loop): start afresh from now
                due, stamp = ticks_ms(), None
            now = clock.now()
            if stamp is None or abs(now - stamp) > 1:  # the first sample, or the clock was set
                stamp = now
                if last is not None and last - interval < stamp <= last:
                    # The clock was set by a second or so: never stamp two samples alike.
                    stamp = last + interval
            last = stamp
            stamp += interval
            e = cp.meter(c.id, ENERGY)
            if e is not None:
                tx.meter_last = int(e)
            metering.queue(cp, c.id, tx, "Sample.Periodic", "MeterValuesSampledData", last)
            if cp.config.get("StopTxnSampledData"):
                metering.keep_for_stop(tx, metering.sample(
                    cp, c.id, "Sample.Periodic", "StopTxnSampledData", clock.fmt(last)))
    finally:
        cp.meter_wakers.remove(w)


async def remote_start(cp, sess, id_tag):
    """After RemoteStartTransaction was Accepted (§5.11): authorise if so configured, then hand
    the session to the integrator."""
    if cp.config.get("AuthorizeRemoteTxRequests"):
        if await sess.authorize(id_tag) != ACCEPTED:
            sess.close()
            return
    else:
        sess.accept(id_tag)
    try:
        cp.callback(START_CHARGING, sess.connector, sess)
    except Exception as e:
        cp.log("api: start callback failed: %r" % e)
        sess.close()


async def stop_by_charger(cp, c, reason):
    """End the connector's transaction on the charger's or central system's initiative."""
    sess = c.session
    tx = c.tx
    if tx is None or sess is None or sess.tx is not tx:
        return
    cp.tell(STOP_CHARGING, c.id, reason)
    meter = cp.meter(c.id, ENERGY)
    await sess.stop_transaction(tx.meter_last if meter is None else meter, reason=reason)
    sess.close()


async def reset(cp, kind):
    """Reset.req (§5.14): every transaction stopped with reason SoftReset / HardReset, a few
    seconds for the StopTransactions to reach the central system (what does not is kept in the
    queue), then the integrator's callback restarts the charger."""
    reason = "SoftReset" if kind == "Soft" else "HardReset"
    for c in cp.connectors[1:]:
        if c.tx is not None:
            await stop_by_charger(cp, c, reason)
    for _ in range(50):
        if not len(cp.txq) or not cp.connected:
            break
        await sleep_ms(100)
    cp.log("api: %s reset" % kind)
    cp.tell(RESET, 0, kind)
