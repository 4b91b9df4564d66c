# The transaction queue's journal (txqueue.py, journal.py): what is on flash, replayed at boot;
# the transactions a power cut left running, ended at boot; and the rewrite that drops dead
# records. The records:
#   START / STOP / METER_VALUES  a message, written before it counts as sent: local id (uint16)
#                                and payload (jcodec.py). The local id ties a transaction's
#                                messages together until the central system's transactionId is
#                                known.
#   ACK   offset (uint32) of the message the central system answered (or that was discarded);
#         for a StartTransaction also local id + transactionId (int32), so that after a reboot
#         its queued MeterValues and StopTransaction still carry the right id. Sending is in
#         order, so an ACK means "everything up to here is done": the head advances without a
#         rewrite. Offset 0xFFFFFFFF: only a transactionId, written by a rewrite.
#   METER local id, connector (uint8), Wh (uint32), UTC seconds (uint32): a running
#         transaction's meter reading, now and then, for the StopTransaction after a power cut.
import struct

from . import clock, jcodec
from .compat import const
from .config import ENERGY
from .journal import Journal

START = const(0xA1)
STOP = const(0xA2)
METER_VALUES = const(0xA3)
ACK = const(0xA4)
METER = const(0xA5)
FILE = "txjournal.bin"
MIN_DEAD = const(4096)  # dead bytes before a rewrite is worth it
_NONE = const(0xFFFFFFFF)


def replay(q):
    """Read the journal at boot: the queue, the transactionIds its messages still need, and
    the transactions that were running when the power went (recover() ends them)."""
    j = q.j = Journal(FILE, q.cp.log)
    done, txs = _scan(q, j)
    damaged = j.damaged
    _count(q, j, done)
    q.orphans = []
    for ltx, t in txs.items():
        if not t[3] and (t[4] >= 0 or t[2]):
            q.orphans.append(_orphan(j, ltx, t))
    for ltx in list(q.ids):  # keep the ids that queued messages still need
        t = txs.get(ltx)
        if t is None or (t[6] <= done and t[3]):
            del q.ids[ltx]
    if q.count or q.orphans:
        q.cp.log("txqueue: %d messages queued in the journal (%d bytes), %d transactions open"
                 % (q.count, j.size, len(q.orphans)))
    if damaged or due(q):
        compact(q, 0, True)  # leave a clean file behind


def _scan(q, j):
    # -> (offset of the last message answered: everything before it is done too,
    #     {local id: [connector, Wh, UTC s, stopped, Start offset, last MV offset, last offset]})
    done = -1
    txs = {}
    with j.reader() as r:
        while True:
            rec = r.next()
            if rec is None:
                break
            off, kind, body = rec
            if kind == ACK and len(body) >= 4:
                o = struct.unpack_from("<I", body)[0]
                if o != _NONE and o > done:
                    done = o
                if len(body) >= 10:
                    ltx, txid = struct.unpack_from("<Hi", body, 4)
                    q.ids[ltx] = txid
                    _newest(q, ltx)
            elif kind == METER and len(body) >= 11:
                ltx, conn, wh, ts = struct.unpack_from("<HBII", body)
                t = _tx(txs, ltx)
                t[0], t[1], t[2] = conn, max(t[1], wh), max(t[2], ts)
                _newest(q, ltx)
            elif START <= kind <= METER_VALUES and len(body) >= 2:
                ltx = body[0] | body[1] << 8
                t = _tx(txs, ltx)
                t[6] = off
                if kind == START:
                    t[4] = off
                elif kind == STOP:
                    t[3] = True
                else:
                    t[5] = off
                _newest(q, ltx)
    return done, txs


def _count(q, j, done):
    # The messages after the last one answered: the queue.
    head = None
    with j.reader(max(done, 0)) as r:
        r.quiet = True  # damage was reported by the first pass
        while True:
            rec = r.next()
            if rec is None:
                break
            if START <= rec[1] <= METER_VALUES and rec[0] > done:
                if head is None:
                    head = rec[0]
                q.count += 1
                q.live += 7 + len(rec[2])
                q.mvs += rec[1] == METER_VALUES
    q.head = j.size if head is None else head


def due(q):
    """Is a rewrite due? Once the dead bytes pass MIN_DEAD and twice the live ones: a backlog
    draining after an outage is then copied about half its size again in all (1/3 + 1/9 + ...),
    and an online journal stays within a few KB."""
    dead = q.j.size - q.live
    return dead >= MIN_DEAD and dead >= 2 * q.live


def _newest(q, ltx):
    # Local ids are 16-bit and wrap: "newer" is serial-number arithmetic (RFC 1982).
    if (ltx - q._ltx) & 0xFFFF < 0x8000:
        q._ltx = ltx


def recover(q):
    """At boot: end each transaction that was running at a power cut with a queued
    StopTransaction, reason PowerLoss (§4.10, errata 3.36), at its last known meter reading
    and time. The central system thus gets one StartTransaction and one StopTransaction."""
    cp = q.cp
    for ltx, conn, wh, ts in q.orphans or ():
        valid = 0 < conn < len(cp.connectors)
        now = cp.meter(conn, ENERGY) if valid else None
        if isinstance(now, (int, float)) and now > wh:
            wh = int(now)  # the meter's own register survived the power cut: it knows best
        p = {"meterStop": wh, "timestamp": clock.fmt(ts), "reason": "PowerLoss"}
        q.write(STOP, ltx, p)
        cp.log("txqueue: transaction L%d on connector %d was running at power loss; "
               "StopTransaction queued (PowerLoss, meterStop %d)" % (ltx, conn, wh))
        if valid:
            cp.connectors[conn].finishing = True  # a cable still in reads Finishing
    q.orphans = None
    if q.count:
        cp.wake()


def compact(q, free=0, quiet=False):
    """Rewrite the journal with what is still needed: the queued messages, the transactionIds
    they need and a checkpoint of each running (or not yet recovered) transaction. With free,
    the oldest MeterValues are left out until that many bytes are freed."""
    j = q.j
    q._hot = None  # its offset changes (or it is dropped): read it back when it is sent
    head = busy = None
    count = mvs = live = dropped = 0
    # Usually every Start/Stop has been answered and the map is empty: it is kept then, rather
    # than a new dict made wherever allocation has got to, to outlive the rewrite.
    items = {} if q.items else q.items
    try:
        j.begin()
        with j.reader(q.head) as r:
            r.quiet = quiet  # at boot: the replay has reported the damage already
            while True:
                rec = r.next()
                if rec is None:
                    break
                off, kind, body = rec
                if not START <= kind <= METER_VALUES:
                    continue
                n = 7 + len(body)
                if kind == METER_VALUES and free > 0 and off != q._busy:
                    free -= n
                    dropped += 1
                    continue
                new = j.add(kind, body)
                head = new if head is None else head
                if off == q._busy:
                    busy = new
                item = q.items.get(off)
                if item is not None:
                    item.off = new
                    items[new] = item
                count += 1
                live += n
                mvs += kind == METER_VALUES
        for ltx, txid in q.ids.items():
            j.add(ACK, struct.pack("<IHi", _NONE, ltx, txid))
        for ltx, o in q.open.items():
            o[1] = max(o[1], o[0].meter_last)
            j.add(METER, struct.pack("<HBII", ltx, o[0].connector, o[1], clock.now()))
        for ltx, conn, wh, ts in q.orphans or ():  # not yet ended by recover()
            j.add(METER, struct.pack("<HBII", ltx, conn, wh, ts))
        j.commit()
    except OSError as e:
        j.abort()
        q.cp.log("txqueue: journal rewrite failed (%r)" % e)
        return
    q.head = j.size if head is None else head
    q.count, q.mvs, q.live, q.items = count, mvs, live, items
    if q._busy is not None:
        q._busy = busy
    if dropped:
        q.cp.log("txqueue: journal full: the %d oldest MeterValues dropped" % dropped)


def _tx(txs, ltx):
    t = txs.get(ltx)
    if t is None:
        t = txs[ltx] = [0, 0, 0, False, -1, -1, -1]  # ..., offset of its last message
    return t


def _orphan(j, ltx, t):
    # (local id, connector, Wh, UTC s) of a transaction open at power loss: the best of its
    # StartTransaction, its checkpoints and its last MeterValues.
    conn, wh, ts = t[0], t[1], t[2]
    for off in (t[4], t[5]):
        rec = j.read(off) if off >= 0 else None
        try:
            p = jcodec.unpack(memoryview(rec[1])[2:]) if rec else None
        except ValueError:
            p = None
        if p is None:
            continue
        if "meterStart" in p:
            conn = p.get("connectorId", conn)
            wh = max(wh, p["meterStart"])
            ts = max(ts, clock.parse(p.get("timestamp", "")) or 0)
        for mv in p.get("meterValue", ()):
            ts = max(ts, clock.parse(mv.get("timestamp", "")) or 0)
            for sv in mv.get("sampledValue", ()):
                if sv.get("measurand", ENERGY) == ENERGY and "phase" not in sv:
                    try:
                        v = float(sv["value"])
                    except (KeyError, ValueError):
                        continue
                    wh = max(wh, int(v * 1000 if sv.get("unit") == "kWh" else v))
    return ltx, conn, wh, ts
