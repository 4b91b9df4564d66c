# RFC 6455 framing, client side (ws.py opens the connection and makes the WebSocket).
# Memory: two buffers per connection, allocated once. Incoming bytes are read ahead into the
# receive buffer (max_size plus room for headers) and parsed there: a message comes back as a
# memoryview of it, and the peer's length fields never size an allocation. Outgoing frames are
# built in the send buffer, header and masked payload, in chunks of _CHUNK bytes.
import asyncio
import os

from .compat import MICROPYTHON, const, ticks_ms, wait_for_ms

try:
    from ._xor import mask as _xmask, move as _xmove  # native, allocation-free (MicroPython)
except Exception:  # CPython has no viper; a generic build may lack the native module
    _xmask = _xmove = None

_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BINARY = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)

_CHUNK = const(1024)  # payload bytes per write: the size of the send buffer
# Receive buffer beyond max_size: the first frame's header (at most 10 bytes from a server, which
# does not mask) and then, behind an almost complete message, a whole control frame (2 + 125).
_SLACK = const(140)
_KEYS = const(16)  # masking keys drawn from os.urandom at once
_CLOSE_WAIT_MS = const(2000)  # how long a close may spend sending its frame / closing TLS


class WSClosed(Exception):
    """The connection is gone: .code is the close code (None if there was no close frame)."""

    def __init__(self, code=None, reason=""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self):
        return "websocket closed (code %s): %s" % (self.code, self.reason)


class _Fail(Exception):
    # (close code, reason) from the synchronous header check; recv() fails the connection.
    pass


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


def _move(buf, d, s, n):
    # buf[d:d+n] = buf[s:s+n], d < s, overlapping.
    if _xmove is not None:
        _xmove(buf, d, s, n)
    else:
        buf[d : d + n] = bytes(buf[s : s + n])


class WebSocket:
    def __init__(self, reader, writer, max_size=8192):
        self._r = reader
        self._w = writer
        self.max_size = max_size  # fixed: the receive buffer is sized from it here
        self._buf = memoryview(bytearray(max_size + _SLACK))
        # Unparsed bytes are _buf[_rp:_re]. While a fragmented message is being put together
        # (_mop is its opcode, else -1) its payload so far is _buf[_ms:_rp]: each frame is
        # dropped from the buffer once handled, so recv() can be cancelled at any await and
        # the next call carries on.
        self._rp = self._re = self._ms = 0
        self._mop = -1
        self._ctl = memoryview(bytearray(125))  # the payload of a ping or close being answered
        self._cop = self._cn = 0  # ... its opcode and length
        self.text = False  # the last message came as text (else binary)
        self._tx = memoryview(bytearray(_CHUNK + 14))
        self._keys = b""  # a supply of masking keys, and where the current one is
        self._ko = 0
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
        # The coroutine keeps few locals (its size is allocated per call): the work is in the
        # plain methods _parse, _take and _check.
        if self.closed:
            raise WSClosed(None, "closed")
        try:
            while True:
                r = self._parse()
                if r is None:  # more bytes: as many as the stream has and the buffer takes
                    if self._readinto is not None:
                        r = self._re  # an empty buffer is read into whole, without a slice
                        r = await self._readinto(self._buf[r:] if r else self._buf)
                    else:
                        r = self._put(await self._r.read(len(self._buf) - self._re))
                    if r is not None:  # None: TLS polled but no complete record yet
                        if not r:
                            raise EOFError
                        self._re += r
                        self.last_rx = ticks_ms()
                elif r is True:  # a control frame, its payload in self._ctl
                    await self._control()
                elif isinstance(r, _Fail):
                    await self._fail(r.args[0], r.args[1])
                elif handle is None:
                    return self.text, r
                else:
                    r = handle(r)
                    if r is not None:
                        await self.send(r)
        except (EOFError, OSError) as e:
            r = self.closed
            await self._shut()
            if r:  # our own close() pulled the socket from under a pending recv
                raise WSClosed(None, "closed") from None
            r = "eof" if isinstance(e, EOFError) else "connection lost: %r" % e
            raise WSClosed(None, r) from None

    def _put(self, d):
        # Bytes read by a stream without readinto (CPython) into the buffer -> their count.
        e = self._re
        self._buf[e : e + len(d)] = d
        return len(d)

    def _parse(self):
        # The frames in the buffer, as far as they go -> a message's payload (a memoryview),
        # True for a control frame to answer, a _Fail, or None when more bytes are needed.
        buf = self._buf
        if self._mop < 0 and self._rp:  # the last message was handed out: drop it
            self._cut(0, self._rp)
        while True:
            p = self._rp
            got = self._re - p
            if got < 2:
                return None
            b0, n = buf[p], buf[p + 1]
            if b0 & 0x70:
                return _Fail(1002, "reserved bits set")
            if n & 0x80:
                return _Fail(1002, "masked frame from server")
            h = 2
            n &= 0x7F
            if n == 126:
                h = 4
                if got >= 4:
                    n = buf[p + 2] << 8 | buf[p + 3]
            elif n == 127:
                h = 10
                if got >= 10:
                    n = int.from_bytes(buf[p + 2 : p + 10], "big")
            if got < h:
                return None
            r = self._check(b0, n)
            if r is not None:
                return r
            if got < h + n:
                return None
            r = self._take(b0, p, h, n)
            if r is not None:
                return r

    def _check(self, b0, n):
        # A frame header against RFC 6455 5.2-5.5 -> None, or a _Fail.
        op = b0 & 0x0F
        if op >= _OP_CLOSE:
            if op > _OP_PONG:
                return _Fail(1002, "unknown opcode %d" % op)
            if not b0 & 0x80 or n > 125:
                return _Fail(1002, "fragmented or oversized control frame")
            return None
        if op == _OP_CONT:
            if self._mop < 0:
                return _Fail(1002, "continuation frame without a message")
        elif op > _OP_BINARY:
            return _Fail(1002, "unknown opcode %d" % op)
        elif self._mop >= 0:
            return _Fail(1002, "new message inside a fragmented one")
        # Checked before reading a single payload byte (1009: RFC 6455 7.4.1).
        if (self._rp - self._ms if self._mop >= 0 else 0) + n > self.max_size:
            return _Fail(1009, "message too big")
        return None

    def _take(self, b0, p, h, n):
        # A whole frame is in the buffer at p (header h bytes, payload n) -> the message's
        # payload when it completes one, True for a ping or close (its payload copied to self._ctl), None
        # when there is nothing to hand out yet (a fragment, a pong).
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
        if not self._close_sent:  # echo the code, as RFC 6455 5.5.1 asks
            try:
                await wait_for_ms(self._frame(_OP_CLOSE, p[:2]), _CLOSE_WAIT_MS)
            except Exception:
                pass
        await self._shut()
        raise WSClosed(code, reason)

    async def _fail(self, code, why):
        # Protocol failure: tell the peer (best effort), drop the connection, report.
        if not self._close_sent:
            try:
                await wait_for_ms(self._frame(_OP_CLOSE, code.to_bytes(2, "big")), _CLOSE_WAIT_MS)
            except Exception:
                pass
        await self._shut()
        raise WSClosed(code, why)

    # ---- sending ------------------------------------------------------------------------------

    def send(self, data, text=True):
        """Send one message; returns what to await (a plain function: see _send)."""
        if isinstance(data, str):
            data = data.encode()
        return self._send(_OP_TEXT if text else _OP_BINARY, data)

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
        n = len(data)
        w = self._w
        if n > _CHUNK or self._lock.locked() or self._close_sent or w is None:
            return self._frame(op, data)
        try:
            w.write(self._chunk(data, 0, n, self._head(op, n)))
        except OSError as e:
            return self._lost(e)
        return w.drain()

    async def _lost(self, e):
        self._close_sent = True
        await self._shut()
        raise WSClosed(None, "connection lost: %r" % e)

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
            i = self._head(op, n)
            pos = 0
            sent = False
            try:
                while True:
                    k = min(_CHUNK, n - pos)
                    w.write(self._chunk(payload, pos, k, i))
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

    def _head(self, op, n):
        # The frame header into the send buffer, with a fresh masking key (RFC 6455 5.3: keys
        # come from a strong entropy source; os.urandom is, and is asked once per _KEYS
        # frames) -> the header's length.
        tx = self._tx
        tx[0] = 0x80 | op
        if n < 126:
            tx[1] = 0x80 | n
            i = 2
        else:
            i = 4 if n < 65536 else 10
            tx[1] = 0xFE if i == 4 else 0xFF
            j = i
            while j > 2:  # the length, big-endian, backwards
                j -= 1
                tx[j] = n & 0xFF
                n >>= 8
        ko = self._ko + 4
        if ko >= len(self._keys):
            self._keys = os.urandom(_KEYS * 4)
            ko = 0
        self._ko = ko
        keys = self._keys
        tx[i] = keys[ko]
        tx[i + 1] = keys[ko + 1]
        tx[i + 2] = keys[ko + 2]
        tx[i + 3] = keys[ko + 3]
        return i + 4

    def _chunk(self, src, pos, k, i):
        """The bytes to write for src[pos:pos+k] masked, behind the first i bytes of the send
        buffer (the header; i is 0 after the first chunk). Chunks start at multiples of 4, so
        the key starts at its first byte in each."""
        tx = self._tx
        if _xmask is not None:
            _xmask(tx, i, src, pos, k, self._keys, self._ko)
            return tx[: i + k]
        # XOR as big ints: no per-byte Python loop. The header rides in the same int, so a
        # small message is one write (one TLS record).
        ko = self._ko
        width = (k + 3) & ~3
        m = int.from_bytes(bytes(self._keys[ko : ko + 4]) * (width >> 2), "big")
        x = int.from_bytes(memoryview(src)[pos : pos + k], "big") ^ (m >> ((width - k) << 3))
        if i:
            x |= int.from_bytes(tx[:i], "big") << (k << 3)
        return x.to_bytes(i + k, "big")

    # ---- closing ------------------------------------------------------------------------------

    async def close(self, code=1000, reason=""):
        # Sends our close frame and drops the TCP connection without waiting for the echo:
        # a charge point closing down has nothing left to read. Never raises.
        if not self.closed and not self._close_sent:
            payload = code.to_bytes(2, "big") + reason.encode()[:123]
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
