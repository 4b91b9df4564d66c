# RFC 6455 framing, client side (ws.py opens the connection and makes the WebSocket).
# Memory: two buffers per connection, allocated once. Incoming bytes are read ahead into the
# receive buffer and parsed there: a message comes back as a memoryview of it, and the peer's
# length fields never size an allocation. The receive buffer holds _RESIDENT bytes (plus room
# for headers): most OCPP messages are shorter; one that is not (up to max_size) is put together
# in a buffer of max_size allocated for it and dropped after. Outgoing frames are built in the
# send buffer, header and masked payload, in chunks of _CHUNK bytes, or written there in place
# (body()); the byte work is wsmask.py's.
import asyncio
import os

from .compat import MICROPYTHON, const, ticks_ms, wait_for_ms

from .wsmask import chunk as _chunk, frame as _xframe, head as _head, move as _move

_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BINARY = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)

_CHUNK = const(1024)  # payload bytes per write: the size of the send buffer
_RESIDENT = const(1024)  # message bytes the receive buffer holds for the connection's life
# Receive buffer beyond max_size: the first frame's header (at most 10 bytes from a server, which
# does not mask) and then, behind an almost complete message, a whole control frame (2 + 125).
_SLACK = const(140)
_KEYS = const(16)  # masking keys drawn from os.urandom at once
_POOL = const(_CHUNK + 14)  # where they are kept in the send buffer
_BODY = const(8)  # where body() starts in the send buffer: room for the longest header it needs
_CLOSE_WAIT_MS = const(2000)  # how long a close may spend sending its frame / closing TLS


class WSClosed(Exception):
    """The connection is gone: .code is the close code (None if there was no close frame)."""

    def __init__(self, code=None, reason=""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self):
        return "websocket closed (code %s): %s" % (self.code, self.reason)


async def close_stream(w):
    # MicroPython's Stream.close() is a no-op and wait_closed() closes the socket at once;
    # CPython's wait_closed() may wait for a TLS shutdown, so it gets a bound.
    try:
        w.close()
        if MICROPYTHON:
            await w.wait_closed()
        else:
            await wait_for_ms(w.wait_closed(), _CLOSE_WAIT_MS)
    except Exception:
        pass


class WebSocket:
    def __init__(self, reader, writer, max_size=8192):
        self._r = reader
        self._w = writer
        self.max_size = max_size  # the longest message taken (1009 beyond)
        self._small = memoryview(bytearray(min(max_size, _RESIDENT) + _SLACK))
        self._buf = self._small  # or, during a long message, one of max_size
        # Unparsed bytes are _buf[_rp:_re]. While a fragmented message is being put together
        # (_mop is its opcode, else -1) its payload so far is _buf[_ms:_rp]: each frame is
        # dropped from the buffer once handled, so recv() can be cancelled at any await and
        # the next call carries on.
        self._rp = self._re = self._ms = 0
        self._mop = -1
        self._ctl = memoryview(bytearray(125))  # the payload of a ping or close being answered
        self._cop = self._cn = 0  # ... its opcode and length
        self.text = False  # the last message came as text (else binary)
        # The send buffer: a frame's header and payload, then a supply of masking keys.
        self._tx = memoryview(bytearray(_POOL + _KEYS * 4))
        self._body = self._tx[_BODY : _BODY + _CHUNK]
        self._k = _POOL + _KEYS * 4  # the offset of the current key; none drawn yet
        self._lock = asyncio.Lock()  # held by a frame written in several chunks
        self._readinto = getattr(reader, "readinto", None)
        self._close_sent = False
        self.closed = False
        self.last_rx = ticks_ms()

    # ---- receiving ----------------------------------------------------------------------------

    def recv(self):
        """-> (is_text, payload), to await. payload is a memoryview into the receive buffer,
        valid only until the next recv(): copy it (bytes(), str(mv, "utf-8")) if it must
        outlive that. A recv() cancelled at any point loses nothing: the next one carries on."""
        return self._loop(None)

    def serve(self, handle):
        """Receive messages until the connection ends (raises WSClosed), answering each one:
        handle(payload) -> the reply to send, or None. Unlike a loop over recv(), this makes no
        coroutine object per message. payload is valid only during the call; self.text says
        whether it came as text."""
        return self._loop(handle)

    async def _loop(self, handle):
        # serve() runs this once per connection, so its locals cost nothing per message: the
        # parsing of frames is written out here. (On MicroPython a plain function with more than
        # about ten locals and stack slots gets its frame allocated and freed per call, which is
        # slow once the heap is full of garbage.) Rare cases go to plain methods.
        if self.closed:
            raise WSClosed(None, "closed")
        buf = self._buf
        try:
            while True:
                if self._mop < 0 and self._rp:  # the last message was handed out: drop it
                    self._cut(0, self._rp)
                    if buf is not self._small and self._re <= len(self._small):
                        self._small[: self._re] = buf[: self._re]  # back to the resident one
                        buf = self._buf = self._small
                p = self._rp
                got = self._re - p
                h = 2  # the header's length, once its second byte is in
                whole = False
                if got >= 2:
                    b0 = buf[p]
                    n = buf[p + 1] & 0x7F
                    h = 2 if n < 126 else 4 if n == 126 else 10
                if got >= h:
                    if h == 4:
                        n = buf[p + 2] << 8 | buf[p + 3]
                    elif h == 10:
                        n = int.from_bytes(buf[p + 2 : p + 10], "big")
                    # A whole text or binary message in one frame, unmasked, within bounds:
                    # the common case needs none of _check's tests.
                    whole = (b0 == 0x81 or b0 == 0x82) and buf[p + 1] < 0x80 and self._mop < 0
                    if not whole or n > self.max_size:
                        r = self._check(b0, buf[p + 1], n)
                        if r is not None:
                            await self._fail(r[0], r[1])
                    if got >= h + n:
                        if whole:
                            self.text = b0 == 0x81
                            self._rp = p + h + n
                            r = buf[p + h : p + h + n]
                        else:
                            r = self._take(b0, p, h, n)
                            if r is True:  # a control frame, its payload in self._ctl
                                await self._control()
                            if r is None or r is True:
                                continue
                        if handle is None:
                            return self.text, r
                        r = handle(r)
                        if r is not None:
                            await self.send(r)
                        continue
                # More bytes: as many as the stream has and the buffer takes.
                if self._re == len(buf):  # full, the frame not complete: a long message
                    # A single-frame message needs only its own length; fragments, max_size.
                    buf = self._grow(h + n if whole else self.max_size)
                    if buf is None:
                        await self._fail(1009, "no memory for a message that long")
                if self._readinto is not None:
                    r = self._re  # an empty buffer is read into whole, without a slice
                    r = await self._readinto(buf[r:] if r else buf)
                else:  # a stream without readinto (CPython)
                    r = await self._r.read(len(buf) - self._re)
                    buf[self._re : self._re + len(r)] = r
                    r = len(r)
                if r is not None:  # None: TLS polled but no complete record yet
                    if not r:
                        raise EOFError
                    self._re += r
                    self.last_rx = ticks_ms()
        except (EOFError, OSError) as e:
            r = self.closed
            await self._shut()
            if r:  # our own close() pulled the socket from under a pending recv
                raise WSClosed(None, "closed") from None
            r = "eof" if isinstance(e, EOFError) else "connection lost: %r" % e
            raise WSClosed(None, r) from None

    def _grow(self, size):
        # The buffer for a message longer than _RESIDENT -> it (None: no memory for it). size
        # was checked against max_size; the slack takes the start of the frame after it.
        try:
            big = memoryview(bytearray(size + _SLACK))
        except MemoryError:
            return None
        big[: self._re] = self._buf[: self._re]
        self._buf = big
        return big

    def _check(self, b0, b1, n):
        # A frame header against RFC 6455 5.2-5.5 -> None, or (close code, reason).
        if b0 & 0x70:
            return 1002, "reserved bits set"
        if b1 & 0x80:
            return 1002, "masked frame from server"
        op = b0 & 0x0F
        if op >= _OP_CLOSE:
            if op > _OP_PONG:
                return 1002, "unknown opcode %d" % op
            if not b0 & 0x80 or n > 125:
                return 1002, "fragmented or oversized control frame"
            return None
        if op == _OP_CONT:
            if self._mop < 0:
                return 1002, "continuation frame without a message"
        elif op > _OP_BINARY:
            return 1002, "unknown opcode %d" % op
        elif self._mop >= 0:
            return 1002, "new message inside a fragmented one"
        # Checked before reading a single payload byte (1009: RFC 6455 7.4.1).
        if (self._rp - self._ms if self._mop >= 0 else 0) + n > self.max_size:
            return 1009, "message too big"
        return None

    def _take(self, b0, p, h, n):
        # A control frame or a fragment, whole in the buffer at p (header h bytes, payload n)
        # -> the message's payload when it completes one, True for a ping or close (its
        # payload copied to self._ctl), None when there is nothing to hand out yet.
        buf = self._buf
        op = b0 & 0x0F
        if op >= _OP_CLOSE:
            if n:
                self._ctl[:n] = buf[p + h : p + h + n]
            self._cut(p, h + n)
            if op == _OP_PONG:
                return None
            self._cop = op
            self._cn = n
            return True
        if op == _OP_CONT:  # its payload joins the previous ones: drop the header between
            self._cut(p, h)
            self._rp = p + n
        else:
            self._mop = op
            self._ms = p + h
            self._rp = p + h + n
        if not b0 & 0x80:
            return None
        self.text = self._mop == _OP_TEXT
        self._mop = -1
        return buf[self._ms : self._rp]

    def _cut(self, p, k):
        # Remove buf[p:p+k]: the bytes read ahead behind it move down.
        e = self._re
        if e > p + k:
            _move(self._buf, p, p + k, e - p - k)
        self._re = e - k
        if self._rp > p:
            self._rp = max(p, self._rp - k)

    async def _control(self):
        p = self._ctl[: self._cn]
        if self._cop == _OP_PING:
            await self._send(_OP_PONG, p)
        else:
            await self._closed_by_peer(p)

    async def _closed_by_peer(self, p):
        if len(p) == 1:
            await self._fail(1002, "close frame with 1-byte payload")
        code = (p[0] << 8 | p[1]) if p else None
        try:
            reason = str(p[2:], "utf-8")
        except UnicodeError:
            reason = ""
        await self._bye(p[:2])  # the code echoed, as RFC 6455 5.5.1 asks
        raise WSClosed(code, reason)

    async def _fail(self, code, why):
        # Protocol failure: tell the peer, drop the connection, report.
        await self._bye(code.to_bytes(2, "big"))
        raise WSClosed(code, why)

    # ---- sending ------------------------------------------------------------------------------

    def send(self, data, text=True):
        """Send one message; returns what to await (a plain function: see _send). Raises
        WSClosed once closed, OSError when the connection breaks under the write."""
        if isinstance(data, str):
            data = data.encode()
        return self._send(_OP_TEXT if text else _OP_BINARY, data)

    def body(self):
        """Room in the send buffer for a text message of up to _CHUNK bytes, to be written in
        place and sent by send_body() before the next await; None while a longer frame is
        being sent from that buffer. (rpc's CALL frames: they need no buffer of their own.)"""
        return None if self._lock.locked() else self._body

    def send_body(self, n):
        # send() of body()[:n]: masked where it is, behind a header written in front of it.
        i = 6 if n < 126 else 8  # that header's length, key included (_BODY: the longest)
        if i < _BODY:
            _move(self._tx, i, _BODY, n)
        return self._send(_OP_TEXT, self._tx[i : i + n])

    def ping(self, data=b""):
        if isinstance(data, str):
            data = data.encode()
        if len(data) > 125:
            raise ValueError("ping payload > 125 bytes")
        return self._send(_OP_PING, data)

    def _send(self, op, data):
        # A frame that fits the send buffer, with no chunked frame under way, is written here
        # and now, whole: the caller awaits only the stream's drain(). That saves the coroutine
        # objects of a frame per message; anything else goes through _frame.
        # A write that fails raises its OSError from here, as drain() does when awaited: the
        # connection is lost, recv() will say so too. (No try: it gets a frame allocated.)
        w = self._w
        if w is None or self._close_sent or len(data) > _CHUNK or self._lock.locked():
            return self._frame(op, data)
        w.write(self._build(op, data))
        if MICROPYTHON and not getattr(w, "out_buf", True):  # Stream.write() sent it all:
            return asyncio.sleep_ms(0)  # drain() would only yield, at a coroutine object's cost
        return w.drain()

    def _build(self, op, data):
        # The frame, header and masked payload, in the send buffer -> the bytes to write.
        if _xframe is None:
            return self._pybuild(op, data)
        k = self._k + 4  # the next key (_key() written out: this runs for every message)
        if k >= _POOL + _KEYS * 4:
            k = self._key()
        self._k = k
        return self._tx[: _xframe(self._tx, op, data, k)]

    def _pybuild(self, op, data):
        # _build without the native module (apart: its stack would put _build's frame on heap).
        n = len(data)
        return _chunk(self._tx, _head(self._tx, op, n, self._key()), data, 0, n, self._k)

    def _key(self):
        # A fresh masking key (RFC 6455 5.3: from a strong source of entropy; os.urandom is,
        # asked once per _KEYS frames) -> its offset in the send buffer.
        k = self._k + 4
        if k >= _POOL + _KEYS * 4:
            k = _POOL
            self._tx[_POOL:] = os.urandom(_KEYS * 4)
        self._k = k
        return k

    async def _frame(self, op, payload):
        # One frame, FIN set, written in chunks under the lock.
        if self.closed or self._close_sent:
            raise WSClosed(None, "closed")
        if op == _OP_CLOSE:
            self._close_sent = True
        await self._lock.acquire()
        try:
            w = self._w
            if w is None:  # shut while we waited for the lock
                raise WSClosed(None, "closed")
            n = len(payload)
            i = _head(self._tx, op, n, self._key())
            pos = 0
            sent = False
            try:
                while True:
                    k = min(_CHUNK, n - pos)
                    w.write(_chunk(self._tx, i, payload, pos, k, self._k))
                    pos += k
                    i = 0
                    sent = pos >= n
                    await w.drain()  # per chunk: keeps MicroPython's out_buf small
                    if sent:
                        return
            except BaseException as e:
                # A frame cut short (cancelled, or the socket broke) leaves the byte stream
                # unusable: no later frame may follow it.
                if not sent or not isinstance(e, asyncio.CancelledError):
                    self._close_sent = True
                if isinstance(e, OSError):
                    await self._shut()
                    raise WSClosed(None, "connection lost: %r" % e) from None
                raise
        finally:
            self._lock.release()

    # ---- closing ------------------------------------------------------------------------------

    async def close(self, code=1000, reason=""):
        # Sends our close frame and drops the TCP connection without waiting for the echo:
        # a charge point closing down has nothing left to read. Never raises.
        await self._bye(code.to_bytes(2, "big") + reason.encode()[:123])

    async def _bye(self, payload):
        # Our close frame, unless one went out (or the connection is gone), best effort and
        # bounded in time; then the connection is dropped.
        if not self.closed and not self._close_sent:
            try:
                await wait_for_ms(self._frame(_OP_CLOSE, payload), _CLOSE_WAIT_MS)
            except Exception:
                pass
        await self._shut()

    async def _shut(self):
        self.closed = True
        w, self._w = self._w, None
        if w is not None:
            await close_stream(w)
