# The queue of transaction-related messages (1.6 spec §3.7, §4.8, §4.10): StartTransaction,
# transaction MeterValues and StopTransaction go out strictly in order, each only after the one
# ahead of it was answered; other messages (Authorize, StatusNotification, Heartbeat) may pass
# them. A message the central system fails to process (a CALLERROR) is retried after
# TransactionMessageRetryInterval x attempts so far, TransactionMessageAttempts times in all, then
# discarded with a log line. A timeout or a lost link never counts as an attempt: the message
# waits for the link to come back.
#
# The queue lives in a journal on flash (journal.py, records in txlog.py), so a power cut loses
# nothing: a message is written there before it counts as sent, and its answer is noted there
# (an ACK record) before the next one goes. Delivery is therefore at least once: a power cut
# between the answer and its note sends the message again. Dead records are dropped by rewriting
# the journal once they outweigh the live ones. Only the head of the queue is ever read back; RAM
# holds counters and the transactionIds still needed, not the messages.
import struct

from . import clock, jcodec, mvjson, txlog
from .compat import const, ticks_add, ticks_diff, ticks_ms
from .config import ENERGY
from .connector import Transaction
from .txlog import ACK, METER, METER_VALUES, MIN_DEAD, START, STOP  # noqa: F401

_ACTIONS = ("StartTransaction", "StopTransaction", "MeterValues")  # by kind - START
CAPACITY = const(65536)  # default journal budget in bytes (cp_info "journal_bytes")
_DROP_BYTES = const(2048)  # a full journal frees at least this much MeterValues at a time
_CHECKPOINT_MS = const(60000)
_ITEMS = const(8)  # Start/Stop items kept for API waiters; older ones have long timed out
_BUF = const(256)  # a record body built in place; a longer one (rare) is built apart


class Item:
    def __init__(self, action, payload, tx):
        self.action = action
        self.payload = payload
        self.tx = tx
        self.off = None  # where the message is in the journal
        self.result = None  # the CALLRESULT payload, or an error code string
        self.waiters = None  # a compat.Waker, made only when an API call waits for this item


class TxQueue:
    def __init__(self, cp):
        self.cp = cp
        self.capacity = cp.info.get("journal_bytes", CAPACITY)
        self.j = None  # the Journal, opened on first use
        self.count = 0  # messages queued
        self.mvs = 0  # of which MeterValues
        self.live = 0  # their bytes in the journal
        self.head = 0  # offset from which the next message to send is looked for
        self.ids = {}  # local id -> transactionId (-1: Start discarded), while still needed
        self.open = {}  # local id -> [Transaction, Wh journaled, ticks then]: running now
        self.items = {}  # offset -> Item of a Start/Stop an API call may be waiting for
        self.orphans = None  # [(local id, connector, Wh, UTC s)] open at the last power cut
        self.attempts = 0  # of the message at the head
        self._retry_at = None
        self._busy = None  # offset of the message on its way
        self._m = None  # and the message itself (see _take())
        self.action = None  # its action
        self._ltx = 0  # the last local id given out
        # The message queued into an empty queue is the next to send: kept as (offset, kind,
        # local id, body length, payload) so it need not be read back and decoded. A MeterValues
        # in jcodec's MeterValues form is kept as its record body (the form at [2:]) and sent
        # as JSON written from that (_json, mvjson.py): no dict is made for it.
        self._hot = None
        self._buf = bytearray(_BUF)  # the record body being written
        self._mv = memoryview(self._buf)
        self._acks = (self._mv[:4], self._mv[:10])  # an ACK's body, of a Start: made once
        self._body = None  # the body write() journaled last
        self._pk = None  # the record _json() writes as JSON (see _payload), its transactionId
        self._txid = 0
        self._json = self._mv_json  # (bound once: a bound method is an allocation)

    def __len__(self):
        return self.count

    # ---- queueing ---------------------------------------------------------------------------

    def body(self):
        """The record buffer: a MeterValues payload in jcodec's byte form written into it
        from offset 2 is queued by put("MeterValues", None, tx, its end)."""
        self._load()
        return self._buf

    def put(self, action, payload, tx, end=0):
        """Queue a message; returns the Item of a Start/Stop (an API call may wait for its
        answer), None for MeterValues. With end, the payload is already in body()[2:end]."""
        self._load()
        kind = START + _ACTIONS.index(action)
        if kind == START:
            self._ltx = ltx = (self._ltx + 1) & 0xFFFF
            self.open[ltx] = [tx, tx.meter_start, ticks_ms()]
        else:
            ltx = self._local(tx)
            if kind == STOP:
                self.open.pop(ltx, None)
            else:
                o = self.open.get(ltx)
                if o is not None:  # a sample carries the energy register: a checkpoint too
                    o[1] = tx.meter_last
                    o[2] = ticks_ms()
        empty = not self.count
        off = self.write(kind, ltx, payload, end)
        self.cp.wake()
        if off is not None and empty:
            if kind == METER_VALUES and (payload is None or self._body[2] == 0):
                payload = bytes(self._body)  # the MeterValues form, at [2:]: sent from it
            self._hot = (off, kind, ltx, self.j.size - off - 7, payload)
        self._body = None
        if kind == METER_VALUES:
            return None
        item = Item(action, payload, tx)
        item.off = off
        if off is not None:
            if kind == START:
                self.cp.log("txqueue: StartTransaction L%d journaled (connector %d, idTag %s)"
                            % (ltx, tx.connector, tx.id_tag))
            self.items[off] = item
            if len(self.items) > _ITEMS:
                del self.items[min(self.items)]
        return item

    def _find(self, tx):
        open_ = self.open
        for ltx in open_:  # not items(): its view and tuples would be allocated at every sample
            if open_[ltx][0] is tx:
                return ltx
        return None

    def _local(self, tx):
        ltx = self._find(tx)
        if ltx is None:
            # Not started through put(): an id of its own; the central system gets its
            # messages with transactionId -1 (errata 3.18).
            self._ltx = ltx = (self._ltx + 1) & 0xFFFF
        return ltx

    def write(self, kind, ltx, payload, n=0):
        buf = self._buf
        buf[0] = ltx & 0xFF
        buf[1] = ltx >> 8
        if not n:
            n = jcodec.pack_into(payload, buf, 2)
        body = self._mv[:n] if n > 0 else struct.pack("<H", ltx) + jcodec.pack(payload)
        self._body = body
        n = 7 + len(body)
        if self.j.size + n > self.capacity and not self._make_room(n, kind):
            self.cp.log("txqueue: journal full; new MeterValues dropped")
            return None
        try:
            off = self.j.append(kind, body)
        except OSError as e:
            self.cp.log("txqueue: %s not journaled (%r): lost" % (_ACTIONS[kind - START], e))
            return None
        self.count += 1
        self.live += n
        if kind == METER_VALUES:
            self.mvs += 1
        return off

    def _make_room(self, n, kind):
        # Dead records go first; then the oldest MeterValues, never a Start or Stop: those are
        # written even past the budget (the file system usually has room; the budget is ours).
        if self.j.size > self.live:
            txlog.compact(self)
        if self.j.size + n > self.capacity and self.mvs > (self._busy is not None):
            txlog.compact(self, max(n, _DROP_BYTES))
        return self.j.size + n <= self.capacity or kind != METER_VALUES

    def checkpoint(self, tx):
        """Called every second for a running transaction: now and then (and only when it
        changed) journal its meter reading, so a power cut loses little energy (recover())."""
        ltx = self._find(tx)
        o = self.open.get(ltx)
        if o is None or ticks_diff(ticks_ms(), o[2]) < _CHECKPOINT_MS:
            return
        o[2] = ticks_ms()
        wh = self.cp.meter(tx.connector, ENERGY)
        if wh is None or int(wh) == o[1] or self.j.size + 18 > self.capacity:
            return
        try:
            struct.pack_into("<HBII", self._buf, 0, ltx, tx.connector, int(wh), clock.now())
            self.j.append(METER, self._mv[:11])
            o[1] = int(wh)
        except OSError:
            pass

    # ---- sending ----------------------------------------------------------------------------

    def retry_in(self):
        if not self.count:
            return 3600000
        if self._retry_at is None:
            return 0
        return max(ticks_diff(self._retry_at, ticks_ms()), 0)

    def ready(self):
        """Is a message due now?"""
        self._load()
        return self.count > 0 and self.retry_in() <= 0

    # A message goes out as: p = begin(); then `await cp.call(q.action, p)`, and answered() with
    # its answer, refused() for a CALLERROR, lost() for Offline or Timeout. (The engine's outbox
    # does that inline, and so does tests_host/outbox.py: a coroutine per message would cost ~300
    # bytes a call.)

    def begin(self):
        """The payload of the head of the queue, made ready to send (action: its action); None
        when there is none; True when it was unreadable (dropped: the queue moved on)."""
        m = self._take()
        if m is None or m is True:
            return m
        self._m = m
        self._busy = m[0]
        self.action = _ACTIONS[m[1] - START]
        return self._payload(m)

    def answered(self, r):
        m, self._m = self._m, None
        off, self._busy = self._busy, None  # a rewrite may have moved it meanwhile
        self._done(off, m[1], m[2], m[3], m[4], r)

    def refused(self, code):
        m, self._m = self._m, None
        self._refused(m, code)

    def lost(self):
        self._m = self._busy = self._pk = None

    def _take(self):
        # The head of the queue as (offset, kind, local id, body length, payload), ready to go;
        # True when it was unreadable (dropped: the queue moved on); None when there is none.
        m = self._hot  # queued into an empty queue: no need to read it back
        if m is None:
            rec = self._head()
            if rec is None:
                return None
            off, kind, body = rec
            try:
                payload = jcodec.unpack(memoryview(body)[2:])
            except ValueError:
                payload = None
            m = (off, kind, body[0] | body[1] << 8, len(body), payload)
            if payload is None:
                action = _ACTIONS[kind - START]
                self.cp.log("txqueue: %s at %d unreadable; dropped" % (action, off))
                self._done(off, kind, m[2], m[3], None, "Damaged")
                return True
        self.head = m[0]
        return m

    def _payload(self, m):
        # What goes to rpc.call() for the message m: its payload, with the transactionId.
        p = m[4]
        if m[1] == START:
            return p
        # Errata 3.18: with no transactionId (the Start was discarded) send -1.
        txid = self.ids.get(m[2], -1)
        if isinstance(p, dict):
            p["transactionId"] = txid
            return p
        self._pk = p
        self._txid = txid
        return self._json

    def _mv_json(self, b, i):
        # rpc writes the payload of the MeterValues in flight with this (see _payload).
        return mvjson.meter_values_json(self._pk, 2, self._txid, b, i)

    def _refused(self, m, code):
        # The central system answered the message m with a CALLERROR.
        off, self._busy = self._busy, None  # a rewrite may have moved it meanwhile
        self.attempts += 1
        if self.attempts < max(self.cp.config.get("TransactionMessageAttempts"), 1):
            wait = self.cp.config.get("TransactionMessageRetryInterval") * self.attempts
            self._retry_at = ticks_add(ticks_ms(), wait * 1000)
            return
        self.cp.log("txqueue: %s discarded after %d attempts (%s)"
                    % (_ACTIONS[m[1] - START], self.attempts, code))
        self._done(off, m[1], m[2], m[3], m[4], code)

    def _head(self):
        with self.j.reader(self.head) as r:
            while True:
                rec = r.next()
                if rec is None:
                    break
                if START <= rec[1] <= METER_VALUES:
                    self.head = rec[0]
                    return rec
        self.cp.log("txqueue: %d messages expected, none found (damaged journal)" % self.count)
        self.count = self.mvs = self.live = 0
        self.head = self.j.size
        return None

    def _done(self, off, kind, ltx, blen, payload, result):
        # The message at off was answered or given up: journal it, then tell the engine.
        txid = None
        if kind == START:
            txid = result.get("transactionId") if isinstance(result, dict) else None
            if not isinstance(txid, int) or isinstance(txid, bool):
                txid = None
            self.ids[ltx] = -1 if txid is None else txid
        elif kind == STOP:
            self.ids.pop(ltx, None)
        self._hot = self._pk = None
        if off is not None:
            struct.pack_into("<IHi", self._buf, 0, off, ltx, self.ids.get(ltx, 0))
            try:
                self.j.append(ACK, self._acks[kind == START])
            except OSError as e:  # it will be sent again after a reboot: at least once
                self.cp.log("txqueue: ACK not journaled (%r)" % e)
            self.head = off + 7 + blen
            self.count -= 1
            self.live -= 7 + blen
            if kind == METER_VALUES:
                self.mvs -= 1
            if not self.count and not self.open:
                # Nothing more to journal until the next transaction: the open append file
                # (its buffer: ~1 KB on littlefs) need not stay in the heap meanwhile.
                self.j.close()
        self.attempts = 0
        self._retry_at = None
        if kind != METER_VALUES:
            self._finish(off, kind, ltx, payload, result, txid)
        if txlog.due(self):
            txlog.compact(self)

    def _finish(self, off, kind, ltx, payload, result, txid):
        item = self.items.pop(off, None)
        o = self.open.get(ltx)
        if item is None:
            item = Item(_ACTIONS[kind - START], payload or {}, None)
        if o is not None:
            item.tx = o[0]
        elif item.tx is None:  # from an earlier boot: a stand-in for on_tx_result
            p = item.payload
            item.tx = Transaction(p.get("connectorId", 0), p.get("idTag"), 0, None)
            item.tx.ended = True
        if kind == START:
            item.tx.id = txid
            item.tx.start_done = True
        item.result = result
        if item.waiters is not None:
            item.waiters.wake()
        self.cp.on_tx_result(item)

    # ---- the journal on flash ---------------------------------------------------------------

    def _load(self):
        if self.j is None:
            txlog.replay(self)

    def recover(self):
        """At boot: end each transaction that was running at a power cut (txlog.recover())."""
        self._load()
        txlog.recover(self)
