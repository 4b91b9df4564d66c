# OCPP-J RPC framework (OCPP-J 1.6 spec §4): CALL / CALLRESULT / CALLERROR frames, unique message
# ids, at most one outstanding CALL (§4.1.1), a call timeout, and payload checks (payload.py)
# that map a bad incoming CALL onto the CALLERROR codes of §4.2.3 while the connection stays up.
import json

from . import compat, jscan
from .compat import Waker, const, ticks_add, ticks_diff, ticks_ms, wait_for_ms
from .payload import ARR, BOOL, ENUM, INT, NUM, OBJ, REQ, STR, TIME, check  # noqa: F401
from .wsmask import int_into, same

CALL = const(2)
CALLRESULT = const(3)
CALLERROR = const(4)

_MAX_ID = const(36)  # §4.1.4: message ids are at most 36 characters
_OUT = const(1024)  # a CALL frame not written in the WebSocket's buffer: first tried this long
_ID = const(4)  # where the id starts in a frame: behind '[2,"'
_LONG = const(512)  # a CALL this long may go to its handler unparsed (see _piecewise)
_HEAD = const(128)  # the bytes of a CALL that hold its id and action


class CallError(Exception):
    """The peer answered a CALL with a CALLERROR, or our CALL could not be sent or answered."""

    def __init__(self, code, description=""):
        super().__init__(code, description)
        self.code = code
        self.description = description


class Offline(CallError):
    def __init__(self):
        super().__init__("Offline", "not connected")


class Timeout(CallError):
    def __init__(self, sent=True):
        super().__init__("Timeout", "no answer in time")
        self.sent = sent  # False: it timed out queueing behind other calls, never sent


_NOT_JSON = object()


def _loads(data):
    # ws hands us a memoryview of its buffer: MicroPython parses it in place, CPython's json
    # wants bytes. Whatever fails is not JSON we can take: bad syntax or UTF-8 (ValueError),
    # and also nesting that exhausts the heap (MemoryError) or CPython's recursion. (A function
    # of its own, kept tiny: on MicroPython a plain function with a try and a few more locals or
    # stack slots gets its frame allocated per call.)
    try:
        return json.loads(data if compat.MICROPYTHON else bytes(data))
    except Exception:
        return _NOT_JSON


def error_frame(uid, code, description=""):
    return json.dumps([CALLERROR, uid, code, description, {}])


def _json_into(p, b, i):
    # The JSON text of payload p into b from i -> where it ends, or -1 when b is too short. p
    # is a dict, the JSON text already made (bytes), or a function that writes it without
    # making it first: p(b, i) -> where it ends, or -1.
    if callable(p):
        return p(b, i)
    if isinstance(p, dict):  # (not a tuple of types: MicroPython would build it per call)
        p = json.dumps(p)
        p = memoryview(p) if compat.MICROPYTHON else p.encode()  # its UTF-8 bytes, no copy
    j = i + len(p)
    if j >= len(b):
        return -1
    b[i:j] = p
    return j


def _outcome(r, then):
    # What call() returns for the answer r: its payload, or the CallError to raise (None: the
    # link went down meanwhile).
    if r is None:
        raise Offline()
    if isinstance(r, CallError):
        raise r
    if then is not None:
        then(r)
    return r


class Rpc:
    """One OCPP-J endpoint over a WebSocket. `handlers` maps an action name to (description,
    function); the function takes the payload and returns the CALLRESULT payload (a dict), and
    must not block: work that takes time is scheduled as a task after the answer goes out.
    One whose description is None checks the payload itself, and gets a long one as its JSON
    text (a memoryview) to read in pieces (jscan), raising ValueError where it is not JSON."""

    def __init__(self, handlers, log):
        import asyncio

        self.handlers = handlers
        self.log = log
        self.ws = None
        self.timeout_ms = 30000
        self.sent_ms = 0  # ticks of the last CALL we sent: lets Heartbeat be skipped (§4.6)
        self.known = ()  # action names we recognise but do not support -> NotSupported
        self._seq = 0
        self._timeouts = 0  # consecutive CALLs sent and never answered
        # §4.1.1, one CALL at a time: _busy while one is under way; the others wait for _free.
        # A flag rather than asyncio.Lock, whose acquire() is a coroutine object per CALL.
        self._busy = False
        self._queued = 0
        self._free = asyncio.Event()
        self._done = Waker()
        self._reply = None  # the answer: its payload, or the CallError to raise
        self._on = None  # the socket of the CALL under way
        # The CALL frame is written in place (_start), in the WebSocket's send buffer: no list,
        # string or buffer of ours. While a CALL awaits its answer its id is _id[_ID:_ID + _idlen].
        self._id = bytearray(_ID + _MAX_ID)
        self._idlen = 0
        self._inplace = False  # the WebSocket has body()
        self._names = {}  # action -> '","Action",' as bytes: made once per action
        self._result = [CALLRESULT, None, None]  # reused: json.dumps reads it at once

    def _put_id(self, b):
        # '[2,"' and a new id into b and _id (§4.1.4: unique per sender on a connection) ->
        # where it ends. A per-boot random prefix keeps ids from repeating across reboots too,
        # which makes central system logs unambiguous; a count follows it.
        if not self._seq:  # the first CALL: _pre is '[2,"<prefix>-'
            import os

            self._pre = ('[2,"%08x-' % int.from_bytes(os.urandom(4), "big")).encode()
            self._id[:13] = self._pre
        self._seq += 1
        b[:13] = self._pre
        self._idlen = int_into(self._id, 13, self._seq) - _ID
        return int_into(b, 13, self._seq)

    def _ours(self, uid):
        # Is uid (a str) the id of the CALL awaiting its answer?
        n = self._idlen
        return n > 0 and uid.encode() == self._id[_ID : _ID + n]

    def attach(self, ws):
        self.ws = ws
        self._inplace = hasattr(ws, "body")  # (a test's fake WebSocket may have only send())
        self._timeouts = 0

    def detach(self):
        self.ws = None
        if self._idlen:  # fail the outstanding CALL now rather than at timeout
            self._reply = None
            self._done.wake()

    async def call(self, action, payload, timeout_ms=None, then=None):
        """Send a CALL and return the CALLRESULT payload. Raises Offline, Timeout or CallError.
        Only one CALL is outstanding (§4.1.1); callers queue behind it, and timeout_ms bounds
        the whole wait, queueing included. then(answer), if given, is called with the answer
        first: a caller with a little to do with it needs no coroutine of its own around this
        one. (This coroutine's size is allocated per CALL: few locals and nested trys, the rest
        in plain methods.)"""
        end = ticks_add(ticks_ms(), timeout_ms or self.timeout_ms)
        if self._busy:
            await self._queue(end)
        self._busy = True
        try:
            payload = self._start(action, payload, end)  # now: what sends the frame
            try:
                await payload
            except Exception:  # the link broke under the frame (OSError, ws.WSClosed)
                raise Offline()
            # The reader wakes us with the answer (or the engine when the link drops).
            while self._reply is None and self.ws is self._on:
                timeout_ms = ticks_diff(end, ticks_ms())
                if timeout_ms <= 0:
                    break
                await self._done.wait(timeout_ms)
                self._done.done()
            if self._reply is None and self.ws is self._on:
                # Two timeouts in a row mean the link is dead even if TCP has not noticed:
                # close it, and the engine reconnects.
                self._timeouts += 1
                if self._timeouts >= 2:
                    await self._on.close(1001)
                raise Timeout()
            self._timeouts = 0
            payload = self._reply  # now: the answer frame
        finally:
            self._done.done()  # in case we were cancelled asleep
            # Nothing of this CALL stays referenced: a string kept alive across the run would
            # sit wherever the heap had room, splitting its largest free block.
            self._reply = self._on = None
            self._idlen = 0
            self._busy = False
            if self._queued:
                self._free.set()
        return _outcome(payload, then)

    async def _queue(self, end):
        # Behind another CALL: wait for our turn until `end`.
        self._queued += 1
        try:
            while self._busy:
                left = ticks_diff(end, ticks_ms())
                if left <= 0:
                    raise Timeout(False)  # nothing was sent
                self._free.clear()
                try:
                    await wait_for_ms(self._free.wait(), left)
                except Exception:  # TimeoutError: the loop decides
                    pass
        finally:
            self._queued -= 1

    def _start(self, action, payload, until):
        # The CALL frame under a new id, written into the WebSocket's send buffer (body()), or
        # when that is busy or too short into a buffer of its own, as long as it takes -> what
        # sends it; self._on is the socket it goes out on.
        ws = self._on = self.ws
        if ws is None:
            raise Offline()
        if ticks_diff(until, ticks_ms()) <= 0:
            raise Timeout(False)  # our turn came too late: do not send at all
        self._reply = None
        self.sent_ms = ticks_ms()
        body = ws.body() if self._inplace else None
        b = bytearray(_OUT) if body is None else body
        i = self._put_id(b)
        name = self._names.get(action)
        if name is None:
            name = self._names[action] = ('","%s",' % action).encode()
        while True:
            j = i + len(name)
            end = -1
            if j < len(b):
                b[i:j] = name
                end = _json_into(payload, b, j)
            if 0 < end < len(b):
                b[end] = 0x5D  # ]
                return ws.send_body(end + 1) if b is body else ws.send(memoryview(b)[: end + 1])
            if len(b) >= 65536:
                raise ValueError("CALL too long")
            big = bytearray(2 * len(b))
            big[:i] = b[:i]
            b = big

    async def feed(self, data):
        """Handle one incoming text message; answers CALLs on the socket."""
        reply = self.handle(data)
        if reply is not None and self.ws is not None:
            await self.ws.send(reply)

    def handle(self, data):
        """Parse and route one message; returns the frame to send back, or None."""
        if self._idlen and self._quick(data):
            return None
        if len(data) > _LONG and (data[1] == 0x32 or data[1] == "2"):  # [2: a long CALL
            msg = self._piecewise(data)
            if msg is not None:
                return msg
        msg = _loads(data)
        if msg is _NOT_JSON:
            # No id can be read: answer with "-1", as OCPP 2.0.1 part 4 §4.2.3 defines for
            # this case; 1.6 leaves it open.
            self.log("rpc: frame is not JSON")
            return error_frame("-1", "FormationViolation", "not valid JSON")
        return self._route(msg)

    # Plain methods on the path of every message stay small: on MicroPython a function with
    # more than 11 words of locals and stack slots (3 more per try or with) gets its frame
    # allocated on the heap per call (_quick did, by one slot).

    def _route(self, msg):
        if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[1], str):
            return self._malformed(msg)
        if len(msg[1]) > _MAX_ID:
            return error_frame("-1", "FormationViolation", "bad message id")
        if msg[0] == CALL:
            return self._on_call(msg, msg[1])
        if msg[0] == CALLRESULT or msg[0] == CALLERROR:
            if self._ours(msg[1]):
                self._answer(msg)
            else:
                # An answer after its timeout, or to nothing: dropped (§4.1.1), never an error.
                self.log("rpc: unmatched answer " + msg[1])
            return None
        # §4.1.3 says ignore the payload of an unknown message type; we still tell the peer.
        return error_frame(msg[1], "FormationViolation", "unknown message type")

    def _malformed(self, msg):
        if not isinstance(msg, list) or len(msg) < 2:
            return error_frame("-1", "FormationViolation", "not an OCPP-J array")
        if not isinstance(msg[1], str):
            return error_frame("-1", "FormationViolation", "bad message id")
        return error_frame(msg[1], "FormationViolation", "too few elements")

    def _quick(self, data):
        # The answer to our CALL when it is a CALLRESULT written compactly, '[3,"<id>",{..}]',
        # as central systems do: its id is compared in place and only the payload is parsed,
        # {} not at all. -> True when taken; anything else (a CALLERROR, a frame with spaces)
        # goes the general way, which also says what is wrong with a bad one.
        n = _ID + self._idlen
        e = len(data) - 1  # the closing ]
        if e < n + 4 or data[0] != 0x5B or data[1] != 0x33 or data[2] != 0x2C:  # [3,
            return False
        if data[3] != 0x22 or data[n] != 0x22 or data[n + 1] != 0x2C:  # "<id>",
            return False
        if data[e] != 0x5D or data[n + 2] != 0x7B:  # {..}]
            return False
        if not same(data, _ID, self._id, _ID, self._idlen):
            return False
        if e == n + 4 and data[n + 3] == 0x7D:
            r = {}
        else:
            r = _loads(data[n + 2 : e])
            if not isinstance(r, dict):
                return False
        self._reply = r
        self._done.wake()
        return True

    def _answer(self, msg):
        # The answer to our CALL: a CALLRESULT [3, id, {payload}] or a CALLERROR
        # [4, id, code, description, {details}]; anything else fails the CALL.
        r = None
        if msg[0] == CALLRESULT:
            if len(msg) == 3 and isinstance(msg[2], dict):
                r = msg[2]
        elif len(msg) >= 4 and isinstance(msg[2], str):
            r = CallError(msg[2], msg[3])
        self._reply = CallError("FormationViolation", "malformed answer") if r is None else r
        self._done.wake()

    def _on_call(self, msg, uid):
        if len(msg) != 4 or not isinstance(msg[2], str):
            return error_frame(uid, "FormationViolation", "a CALL has 4 elements")
        action, payload = msg[2], msg[3]
        entry = self.handlers.get(action)
        if entry is None:
            if action in self.known:
                return error_frame(uid, "NotSupported", action + " is not supported")
            return error_frame(uid, "NotImplemented", "unknown action " + action)
        spec, fn = entry
        if payload is None:
            payload = {}  # §4.2.1 allows null for "no payload"
        err = check(payload, spec) if spec is not None else None
        if err:
            return error_frame(uid, err[0], err[1])
        return self._run(uid, action, fn, payload, False)

    def _piecewise(self, data):
        # A long CALL '[2,"<id>","<action>",{..}]' whose handler reads its payload's JSON text
        # itself (its description is None): the payload goes to it unparsed, as a memoryview
        # of the receive buffer. -> the reply, or None: the general way, also for text that is
        # not JSON (or not compact enough for jscan), which then gets the answers it always had.
        data = data.encode() if isinstance(data, str) else data  # (a test's fake WebSocket)
        n = min(len(data), _HEAD)
        try:
            i = jscan.skip(data, 1, n)
            if data[0] != 0x5B or data[i] != 0x32:  # [2
                return None
            i = jscan.after(data, i + 1, n)
            e = jscan.string_end(data, i, n)
            uid = jscan.load(data, i, e)
            i = jscan.after(data, e, n)
            e = jscan.string_end(data, i, n)
            action = jscan.load(data, i, e)
            i = jscan.after(data, e, n)
            if data[i] != 0x7B:  # {
                return None
        except (ValueError, IndexError):
            return None
        entry = self.handlers.get(action)
        if len(uid) > _MAX_ID or entry is None or entry[0] is not None:
            return None
        e = len(data) - 1
        while e > i and data[e] in b" \t\r\n":
            e -= 1
        if data[e] != 0x5D:  # ]
            return None
        return self._run(uid, action, entry[1], memoryview(data)[i:e], True)

    def _run(self, uid, action, fn, payload, text):
        # fn(payload) -> the answer frame; None if the payload, as `text`, was not JSON.
        try:
            result = fn(payload)
        except CallError as e:  # a handler's own verdict on the payload
            return error_frame(uid, e.code, e.description)
        except Exception as e:  # a handler bug must not take the connection down
            if text and isinstance(e, (ValueError, IndexError)):
                return None
            self.log("rpc: %s handler failed: %r" % (action, e))
            return error_frame(uid, "InternalError", action + " failed")
        f = self._result
        f[1], f[2] = uid, result
        try:
            return json.dumps(f)
        except (TypeError, ValueError) as e:  # a result JSON cannot carry: the handler's bug
            self.log("rpc: %s result not serialisable: %r" % (action, e))
            return error_frame(uid, "InternalError", action + " failed")
        finally:
            f[1] = f[2] = None
