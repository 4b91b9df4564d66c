# In-process measurements on the MicroPython unix port (NOT CPython) for tools/bench.py and
# tests_host/test_bench.py; run it in an empty folder (the library writes config and journal):
#   MICROPYPATH=build/lib:build/firmware:build:.frozen micropython tools/bench_mp.py MODE ARGS
# MODE: imports MOD.. (heap cost of each import) | alloc K stack|rpc (bytes per message, mean of
# K, gc.disable()) | soak N (mixed messages: growth, largest free block) | cpu N gc|nogc (round
# trip vs json.dumps + json.loads of the same frames) | session TX MV HB LIST [SHIFT] (the
# issue's standard session: live state per stage) | quick (all, a few messages: the test).
# The central system is an in-process peer answering at once, as the byte stream under the real
# ws.WebSocket ("stack") or as a fake WebSocket object in place of ocpp.ws.connect ("rpc": engine
# + rpc + json only); its own allocations and time are subtracted. Output: "BENCH {json}"
# lines; "MEMINFO label" is followed by what micropython.mem_info() prints.
import asyncio
import gc
import json
import sys
import time

import micropython
from micropython import const

_TIME = b'"2026-01-01T00:00:00Z"'
REPLIES = {
    b"BootNotification": b'{"status":"Accepted","currentTime":' + _TIME + b',"interval":86400}',
    b"Heartbeat": b'{"currentTime":' + _TIME + b"}",
    b"StartTransaction": b'{"transactionId":1,"idTagInfo":{"status":"Accepted"}}',
    b"Authorize": b'{"idTagInfo":{"status":"Accepted"}}',
    b"StopTransaction": b'{"idTagInfo":{"status":"Accepted"}}',
}
MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"
METER = {"Energy.Active.Import.Register": 12345, "Power.Active.Import": 3680,
         "Current.Import": 16, "Voltage": 230}
GETCONF = b'[2,"bench-gc","GetConfiguration",{}]'
KINDS = ("Heartbeat", "MeterValues", "GetConfiguration", "GetConfiguration (via stream)",
         "outbox idle round")


def emit(obj):
    print("BENCH " + json.dumps(obj))


class Peer:
    """The central system's end: reads the charge point's frames, answers CALLs at once. It is
    the byte stream under ws.WebSocket (reader and writer in one) in "stack" mode."""

    def __init__(self, framed, account):
        self.framed = framed
        self.account = account  # gc.mem_alloc() scans the whole heap: not while timing
        self.out = []  # what the charge point is to read next: frames (framed) or messages
        self.off = 0
        self.ev = asyncio.Event()
        self.part = None  # a frame of ours not complete yet (sent in several chunks)
        self.alloc = 0  # bytes the peer itself allocated: subtracted from measurements
        self.us = 0  # microseconds spent in the peer: subtracted from timings
        self.calls = 0  # CALLs answered
        self.results = 0  # answers received to our CALLs (GetConfiguration)
        self.last_call = self.last_reply = self.last_result = None
        # The soak turns this off: a frame the peer keeps is a long-lived object of the size
        # of a GetConfiguration answer, landing anywhere in the heap, which a real central
        # system (another machine) never puts in the charger's heap.
        self.keep = True

    def on_text(self, p):
        q1 = p.find(b'"')
        q2 = p.find(b'"', q1 + 1)
        if p[1] == 0x32:  # "[2": a CALL
            q3 = p.find(b'"', q2 + 1)
            body = REPLIES.get(p[q3 + 1 : p.find(b'"', q3 + 1)], b"{}")
            reply = b"[3," + p[q1 : q2 + 1] + b"," + body + b"]"
            self.calls += 1
            if self.keep:
                self.last_call, self.last_reply = p, reply
            self.push(reply)
        else:
            self.results += 1
            if self.keep:
                self.last_result = p

    def push(self, text):
        if self.framed:
            n = len(text)
            hdr = bytes((0x81, n)) if n < 126 else bytes((0x81, 126, n >> 8, n & 255))
            text = hdr + text
        self.out.append(text)
        self.ev.set()

    def waiter(self):
        # What to await until there is something to read; the generator Event.wait() makes
        # is the peer's allocation, not the engine's.
        a, t = self.enter()
        self.ev.clear()
        w = self.ev.wait()
        self.leave(a, t)
        return w

    def enter(self):
        return gc.mem_alloc() if self.account else 0, time.ticks_us()

    def leave(self, a, t):
        if self.account:
            self.alloc += gc.mem_alloc() - a
        self.us += time.ticks_diff(time.ticks_us(), t)

    def write(self, b):
        a, t = self.enter()
        if self.part:
            b = self.part + bytes(b)
            self.part = None
        n, i = b[1] & 0x7F, 2
        if n == 126:
            n, i = b[2] << 8 | b[3], 4
        elif n == 127:
            n, i = int.from_bytes(b[2:10], "big"), 10
        if len(b) < i + 4 + n:
            self.part = bytes(b)
        elif b[0] & 15 == 1 and n:  # a text frame: unmask as one big int, as the sender masks
            w = (n + 3) & ~3
            m = int.from_bytes(bytes(b[i : i + 4]) * (w >> 2), "big") >> ((w - n) << 3)
            self.on_text((int.from_bytes(b[i + 4 : i + 4 + n], "big") ^ m).to_bytes(n, "big"))
        self.leave(a, t)

    async def drain(self):
        pass

    wait_closed = drain

    def close(self):
        pass

    def push_gen(self, n, gen):
        """A text frame of n payload bytes made piece by piece by gen as the charge point reads
        it: a long message costs the peer no heap (a real one is in another machine)."""
        hdr = bytes((0x81, n)) if n < 126 else bytes((0x81, 126, n >> 8, n & 255))
        self.out.append(hdr)
        self.out.append(gen)
        self.ev.set()

    async def readinto(self, mv):
        while True:
            while not self.out:
                await self.waiter()
            f = self.out[0]
            if isinstance(f, bytes):
                break
            p = next(f, None)  # push_gen's next piece, read before the rest of the generator
            if p is None:
                self.out.pop(0)
            else:
                self.out.insert(0, p)
        a, t = self.enter()
        k = min(len(mv), len(f) - self.off)
        mv[:k] = memoryview(f)[self.off : self.off + k]
        self.off += k
        if self.off >= len(f):
            self.out.pop(0)
            self.off = 0
        self.leave(a, t)
        return k


_LEAN = const(96)


class LeanPeer(Peer):
    """The Peer of session mode, which measures the smallest heap the engine runs in: it keeps
    no copy of a frame, unmasking only its first _LEAN bytes (enough for the id and action, the
    answer's status) as the chunks of a long one arrive; last_len is the whole length."""

    def __init__(self, framed, account):
        super().__init__(framed, account)
        self.head = bytearray(_LEAN)
        self.need = 0  # payload bytes of the current frame still to come
        self.last_len = 0

    def write(self, b):
        if self.need:  # a further chunk of a long frame
            self.need -= len(b)
        else:
            n, i = b[1] & 0x7F, 2
            if n == 126:
                n, i = b[2] << 8 | b[3], 4
            elif n == 127:
                n, i = int.from_bytes(b[2:10], "big"), 10
            if b[0] & 15 != 1 or not n:
                return
            k = min(n, _LEAN, len(b) - i - 4)
            for j in range(k):
                self.head[j] = b[i + 4 + j] ^ b[i + (j & 3)]
            self.last_len = n
            self.k = k
            self.need = n - (len(b) - i - 4)
        if self.need <= 0:
            self.need = 0
            self.on_text(bytes(self.head[: self.k]))


class FakeWS:
    """A WebSocket object in place of ocpp.ws.WebSocket: messages straight to and from the peer."""

    def __init__(self, peer):
        self.peer = peer
        self.last_rx = time.ticks_ms()
        self.closed = False
        self.buf = memoryview(bytearray(1024))

    async def recv(self):
        while not self.peer.out:
            await self.peer.waiter()
        a, t = self.peer.enter()
        r = True, memoryview(self.peer.out.pop(0))
        self.last_rx = time.ticks_ms()
        self.peer.leave(a, t)
        return r

    async def send(self, data, text=True):
        a, t = self.peer.enter()
        self.peer.on_text(data.encode() if isinstance(data, str) else bytes(data))
        self.peer.leave(a, t)

    async def serve(self, handle):
        # As ocpp.ws.WebSocket.serve(): each message handed to handle(), its answer sent.
        while True:
            _, data = await self.recv()
            data = handle(data)
            if data is not None:
                await self.send(data)

    def body(self):  # as ws.WebSocket's: where rpc writes its CALL frames
        return self.buf

    def send_body(self, n):
        return self.send(self.buf[:n])

    async def ping(self, data=b""):
        pass

    async def close(self, code=1000, reason=""):
        self.closed = True


def _check(t0):
    # A MemoryError inside an engine task ends that task and we would wait for ever.
    if time.ticks_diff(time.ticks_ms(), t0) > 10000:
        raise RuntimeError("stalled: the engine stopped answering (see stderr)")


async def boot(framed, account=False, profiles=(), lean=False):
    """A running charge point (one connector), booted and idle; the peer."""
    from ocpp import api, ws

    peer = (LeanPeer if lean else Peer)(framed, account)

    async def connect(url, protocol="ocpp1.6", auth=None, cadata=None, max_size=8192, *a):
        return ws.WebSocket(peer, peer, max_size) if framed else FakeWS(peer)

    ws.connect = connect

    def callback(reason, cid, value):
        return METER.get(value) if reason == api.GET_METER_VALUE else None

    info = {"vendor": "Bench", "model": "bench_mp", "connectors": 1, "measurands": tuple(METER),
            "profiles": profiles}
    cs = {"url": "ws://bench.invalid/ocpp", "cp_id": "BENCH", "call_timeout_ms": 10000}
    cp = api.init(info, cs, callback)  # the engine logs to stderr
    for k, v in (("HeartbeatInterval", 86400), ("WebSocketPingInterval", 0),
                 ("MeterValueSampleInterval", 0), ("MeterValuesSampledData", MEASURANDS)):
        cp.config.set(k, v, False)
    cp.start()
    t0 = time.ticks_ms()
    while cp.registration != "Accepted":
        _check(t0)
        await asyncio.sleep_ms(1)
    return cp, peer


async def settle(peer, ms=300):
    n, t0 = -1, time.ticks_ms()
    while n != peer.calls:  # until `ms` without a CALL: the StatusNotifications are out
        _check(t0)
        n = peer.calls
        await asyncio.sleep_ms(ms)


async def tx_open(cp, peer):
    from ocpp import api

    sess = cp.session_open(1)
    if await sess.authorize("BENCH") != "Accepted":
        raise RuntimeError("Authorize not accepted")
    cp.connector_event(1, api.EV_PLUGGED)
    if await sess.start_transaction(0, 1) != "Accepted":
        raise RuntimeError("StartTransaction not accepted")
    await settle(peer)
    return sess


async def setup(framed, account=False):
    """A running charge point (one connector) with a transaction open; the peer; the tx."""
    cp, peer = await boot(framed, account)
    sess = await tx_open(cp, peer)
    return cp, peer, sess.tx


async def one(cp, peer, kind, tx, gcf):
    """One message of KINDS[kind]; kind 2 feeds gcf to rpc.feed() (what the reader task does),
    kind 3 sends GETCONF down the stream, kind 4 lets the outbox run one idle round."""
    if kind == 0:
        await cp.heartbeat()
    elif kind == 1:  # what the metering task does each interval; the outbox sends it
        mv = cp.sample(tx.connector, "Sample.Periodic", "MeterValuesSampledData")
        cp.txq.put("MeterValues", {"connectorId": tx.connector, "meterValue": [mv]}, tx)
        t0 = time.ticks_ms()
        while len(cp.txq):  # sent and answered (the queue may be a journal on flash)
            _check(t0)
            await asyncio.sleep_ms(0)
    elif kind == 2:
        await cp.rpc.feed(gcf)
    elif kind == 3:
        n, t0 = peer.results, time.ticks_ms()
        peer.push(GETCONF)
        while peer.results == n:
            _check(t0)
            await asyncio.sleep_ms(0)
    else:
        cp.wake()
        for _ in range(3):
            await asyncio.sleep_ms(0)


def meter_queue(cp, tx, clock, metering):
    """KINDS[1] as the engine's metering task does it each interval (api._metering): a sample
    queued straight in the journal's form (metering.queue), which the outbox sends. (The
    modules are handed in: an import statement here would allocate at every call.)"""
    metering.queue(cp, tx.connector, tx, "Sample.Periodic", "MeterValuesSampledData",
                   clock.now())


async def meter_once(cp, tx):
    from ocpp import clock, metering

    meter_queue(cp, tx, clock, metering)
    t0 = time.ticks_ms()
    while len(cp.txq):  # sent and answered
        _check(t0)
        await asyncio.sleep_ms(0)


async def mixed(cp, peer, tx, n):
    for i in range(n):  # Heartbeat, MeterValues, GetConfiguration through the stream
        await one(cp, peer, (0, 1, 3)[i % 3], tx, None)


async def alloc(k, framed, idle_ms=3000):
    from ocpp import api, clock, metering  # noqa: F401  (first: the state is without the code)

    gc.collect()
    base = gc.mem_alloc()
    cp, peer, tx = await setup(framed, True)
    gc.collect()
    res = {"engine state": gc.mem_alloc() - base}  # booted, 1 connector, a transaction open
    gcf = memoryview(GETCONF)
    for kind, name in enumerate(KINDS):
        if kind == 3 and not framed:
            continue
        for count in (3, k):  # the first round warms up: first-use costs are not per message
            gc.collect()
            gc.disable()
            a0, p0, r0 = gc.mem_alloc(), peer.alloc, peer.results
            for _ in range(count):
                # Heartbeat and MeterValues as the engine sends them, with no coroutine of the
                # bench's around each (one() and meter_once() are ~150 bytes a call).
                if kind == 0:
                    await cp.heartbeat()
                elif kind == 1:
                    meter_queue(cp, tx, clock, metering)
                    t0 = time.ticks_ms()
                    while len(cp.txq):
                        _check(t0)
                        await asyncio.sleep_ms(0)
                else:
                    await one(cp, peer, kind, tx, gcf)
            used = gc.mem_alloc() - a0 - (peer.alloc - p0)
            gc.enable()
        res[name] = used // k
        if kind == 2:
            res["GetConfiguration answer bytes"] = len(peer.last_result) * (peer.results > r0)
    mv = cp.sample(tx.connector, "Sample.Periodic", "MeterValuesSampledData")
    res["MeterValues meterValue bytes"] = len(json.dumps(mv))
    total = getattr(micropython, "mem_total", None)  # bytes allocated so far (MEM_STATS ports)
    if total and framed:  # the engine left alone, a transaction open: what its timers cost
        t0 = total()
        await asyncio.sleep_ms(idle_ms)
        res["idle B/s"] = (total() - t0) * 1000 // idle_ms
    emit({"alloc": {"mode": "stack" if framed else "rpc", "k": k, "per_message": res}})
    await cp.stop()


async def soak(n):
    cp, peer, tx = await setup(True)
    await mixed(cp, peer, tx, 30)  # warm up
    calls0, results0 = peer.calls, peer.results
    peer.keep = False
    peer.last_call = peer.last_reply = peer.last_result = None
    gc.collect()
    start = gc.mem_alloc()
    print("MEMINFO soak-start")
    micropython.mem_info()
    t0 = time.ticks_ms()
    await mixed(cp, peer, tx, n)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    gc.collect()
    end = gc.mem_alloc()
    print("MEMINFO soak-end")
    micropython.mem_info()
    emit({"soak": {"n": n, "start": start, "end": end, "growth": end - start, "ms": ms,
                   "calls": peer.calls - calls0, "answers": peer.results - results0,
                   "queued": len(cp.txq)}})
    await cp.stop()


_BATCH = const(25)


async def cpu(n, gc_off):
    # nogc times batches of _BATCH messages with the collector off and collects, untimed,
    # between them (gc: the collector runs as it will, timed). Off for all n messages, the
    # heap's used part grew to megabytes, and every allocation after a free (a frame MicroPython
    # puts on the heap, a JSON buffer grown) scanned the allocation table from the freed block
    # on: microseconds per allocation that a board's small heap never costs.
    from ocpp import clock, metering

    cp, peer, tx = await setup(True)
    res = {}
    for kind in (0, 1):
        for _ in range(20):
            await (meter_once(cp, tx) if kind else cp.heartbeat())
        total = peer_us = 0
        for b in range(0, n, _BATCH):
            if gc_off:
                gc.collect()
                gc.disable()
            us0, t0 = peer.us, time.ticks_us()
            for _ in range(min(_BATCH, n - b)):  # as alloc(): no coroutine of the bench's
                if kind:
                    meter_queue(cp, tx, clock, metering)
                    while len(cp.txq):
                        await asyncio.sleep_ms(0)
                else:
                    await cp.heartbeat()
            total += time.ticks_diff(time.ticks_us(), t0)
            peer_us += peer.us - us0
            gc.enable()
        # The floor: serialise the same CALL and parse the same answer, nothing else.
        call, reply = json.loads(peer.last_call), memoryview(peer.last_reply)
        floor = 0
        for b in range(0, n, _BATCH):
            if gc_off:
                gc.collect()
                gc.disable()
            t0 = time.ticks_us()
            for _ in range(min(_BATCH, n - b)):
                json.dumps(call)
                json.loads(reply)
            floor += time.ticks_diff(time.ticks_us(), t0)
            gc.enable()
        us = (total - peer_us) / n
        res[KINDS[kind]] = {"us": us, "peer_us": peer_us / n, "floor_us": floor / n,
                            "ratio": us * n / floor, "call_bytes": len(peer.last_call)}
    emit({"cpu": {"n": n, "gc": not gc_off, "round_trip": res}})
    await cp.stop()


async def push_call(peer, frame, gen=None):
    # frame: the CALL; or its length, gen making it (Peer.push_gen)
    n, t0 = peer.results, time.ticks_ms()
    if gen is None:
        peer.push(frame)
    else:
        peer.push_gen(frame, gen)
    while peer.results == n:
        _check(t0)
        await asyncio.sleep_ms(0)
    if b"[3," not in peer.last_result[:4]:
        raise RuntimeError("not a CALLRESULT: %s" % bytes(peer.last_result[:80]))


_LL_HEAD = b'[2,"bench-ll","SendLocalList",{"listVersion":1,"updateType":"Full",' \
    b'"localAuthorizationList":['
_LL_TAG = b'{"idTag":"TAG%05d","idTagInfo":{"status":"Accepted"}}'
_LL_TAIL = b"]}]"


def local_list(n):
    yield _LL_HEAD
    for i in range(n):
        yield b"," + _LL_TAG % i if i else _LL_TAG % i
    yield _LL_TAIL


def live(res, key, base):
    gc.collect()
    res[key] = gc.mem_alloc() - base


async def session(tx_n, mv_n, hb_n, list_n, shift=5, getconf=1):
    """The issue's standard session on the engine alone, 1 connector, in-process: boot, tx_n
    transactions of mv_n MeterValues (4 measurands), hb_n Heartbeats, a SendLocalList of
    list_n entries, a full GetConfiguration. Prints the live state (after gc.collect(), code
    excluded) at each stage; run under -X heapsize=N by tools/bench.py to find the smallest
    heap that completes it, whose difference to "code" is the peak live state + fragmentation.
    As firmware/main.py does, the heap is collected each time 1/2**shift of it has been
    allocated (shift 0: only when full): the free space then stays in fewer, larger pieces.
    getconf 0 leaves GetConfiguration out: with list_n 0, the transactions alone."""
    gc_threshold = 0
    if shift and hasattr(gc, "threshold"):
        gc_threshold = (gc.mem_free() + gc.mem_alloc()) >> shift
        gc.threshold(gc_threshold)
    from ocpp import api  # noqa: F401  (the code first, so that "code" is all of it)
    from ocpp.profiles import localauth  # noqa: F401

    # ... including the parts of asyncio that load on first use (the engine's Event, Lock and
    # wait_for_ms), as firmware/startup.py imports them before it measures: code, not state.
    for name in ("Event", "Lock", "wait_for_ms"):
        getattr(asyncio, name, None)

    gc.collect()
    base = gc.mem_alloc()
    res = {"code": base, "gc_threshold": gc_threshold}
    cp, peer = await boot(True, False, ("localauth",), True)
    await settle(peer, 100)
    live(res, "idle", base)
    for _ in range(tx_n):
        sess = await tx_open(cp, peer)
        for _ in range(mv_n):  # as the engine's metering task queues them (api._metering)
            await meter_once(cp, sess.tx)
        if await sess.stop_transaction(mv_n, 5000) != "Accepted":
            raise RuntimeError("StopTransaction not accepted")
        sess.close()
        cp.connector_event(1, api.EV_UNPLUGGED)
        await settle(peer, 50)
    live(res, "after transactions", base)
    for _ in range(hb_n):
        await cp.heartbeat()
    # SendLocalListMaxLength (read-only, 50 by default) as large as the list, so that it is
    # written and not refused; the list is made as the engine reads it: all the heap it costs
    # is the engine's.
    cp.config.set("SendLocalListMaxLength", max(list_n, 1), False)
    n = len(_LL_HEAD) + len(_LL_TAIL) + list_n * (len(_LL_TAG % 0) + 1) - (list_n > 0)
    await push_call(peer, n, local_list(list_n))
    if b'"Accepted"' not in peer.last_result:
        raise RuntimeError("SendLocalList not accepted: %s" % bytes(peer.last_result[:80]))
    live(res, "after SendLocalList", base)
    if getconf:
        await push_call(peer, GETCONF)
        res["GetConfiguration answer bytes"] = peer.last_len
        live(res, "after GetConfiguration", base)
    emit({"session": res})
    await cp.stop()
    gc.threshold(-1)  # quick mode runs more after this


def imports(names):
    out = []
    gc.collect()
    base = gc.mem_alloc()
    for name in names:
        gc.collect()
        a, err = gc.mem_alloc(), None
        try:
            __import__(name)
        except Exception as e:  # noqa: BLE001  (reported, the others are still measured)
            err = "%s: %s" % (type(e).__name__, e)
        gc.collect()
        out.append((name, gc.mem_alloc() - a, err))
    emit({"imports": {"base": base, "modules": out}})


def main(argv):
    mode = argv[0] if argv else "quick"
    word = 8 if sys.maxsize > 2**32 else 4
    emit({"runtime": {"version": sys.version, "word_bytes": word, "gc_block": 4 * word}})
    if mode == "imports":
        imports(argv[1:])
    elif mode == "alloc":
        asyncio.run(alloc(int(argv[1]), argv[2] == "stack"))
    elif mode == "soak":
        asyncio.run(soak(int(argv[1])))
    elif mode == "cpu":
        asyncio.run(cpu(int(argv[1]), argv[2] == "nogc"))
    elif mode == "session":
        asyncio.run(session(*(int(a) for a in argv[1:7])))
    elif mode == "quick":
        imports(["ocpp.compat", "ocpp.api"])
        asyncio.run(alloc(5, True, 300))
        asyncio.run(alloc(5, False))
        asyncio.run(soak(30))
        asyncio.run(cpu(20, True))
        asyncio.run(session(2, 3, 3, 10))
    else:
        raise SystemExit("unknown mode " + mode)


main(sys.argv[1:])
