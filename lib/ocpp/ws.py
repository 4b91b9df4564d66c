# RFC 6455 WebSocket client over asyncio streams, for OCPP-J 1.6 (MicroPython 1.29 and CPython).
# Only what a charge point needs: client side, one subprotocol, no extensions, no compression.
# Memory: one receive buffer of max_size bytes, allocated once per connection; incoming messages
# are read straight into it, never into buffers sized from the peer's length field.
import asyncio
import binascii
import hashlib
import os

from .compat import MICROPYTHON, const, ticks_ms, wait_for_ms

try:
    from ._xor import mask as _xmask  # native, allocation-free masking (MicroPython only)
except Exception:  # CPython has no viper; a generic build may lack the native module
    _xmask = None

_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BINARY = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)

_CHUNK = const(1024)  # bytes masked per big-int XOR: bounds the transient allocations of send
_HDR_MAX = const(4096)  # handshake response: total bytes ...
_HDR_LINES = const(40)  # ... header lines ...
_LINE_MAX = const(256)  # ... and bytes kept per line (longer lines are cut; ours are short)
_CLOSE_WAIT_MS = const(2000)  # how long close() may spend sending its frame / closing TLS


class WSError(Exception):
    """Handshake or connection set-up failure; str(e) is meant for humans."""


class WSClosed(Exception):
    """The connection is gone: .code is the close code (None if there was no close frame)."""

    def __init__(self, code=None, reason=""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self):
        return "websocket closed (code %s): %s" % (self.code, self.reason)


def parse_url(url):
    i = url.find("://")
    scheme = url[:i].lower()
    if i < 0 or scheme not in ("ws", "wss"):
        raise WSError("unsupported URL (want ws:// or wss://): %s" % url)
    secure = scheme == "wss"
    rest = url[i + 3 :].split("#")[0]
    j = len(rest)
    for c in "/?":
        k = rest.find(c)
        if 0 <= k < j:
            j = k
    netloc, path = rest[:j], rest[j:]
    if path[:1] != "/":
        path = "/" + path
    netloc = netloc[netloc.rfind("@") + 1 :]  # drop user:pass@, credentials go via basic_auth
    k = netloc.rfind(":")
    if k < netloc.rfind("]"):  # that colon is inside an IPv6 literal: no port given
        k = -1
    host = netloc[:k] if k >= 0 else netloc
    if host[:1] == "[" and host[-1:] == "]":
        host = host[1:-1]
    try:
        port = int(netloc[k + 1 :]) if k >= 0 else (443 if secure else 80)
    except ValueError:
        port = 0
    if not host or not 0 < port < 65536:
        raise WSError("bad host or port in URL: %s" % url)
    return secure, host, port, path


_WANTED = (b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-protocol")


def _txt(b):
    try:
        return b.decode()
    except UnicodeError:
        return repr(b)


def _b64(data):
    # binascii.b2a_base64 appends "\n" on both runtimes.
    return binascii.b2a_base64(data).strip()


async def _read_byte(reader, one):
    # One byte at a time so the handshake never reads past the blank line: a CSMS may send its
    # first frame right behind the 101 response, and those bytes belong to the WebSocket.
    if hasattr(reader, "readinto"):
        while True:
            n = await reader.readinto(one)
            if n:
                return one[0]
            if n == 0:  # None = TLS record not complete yet, poll again
                raise EOFError
    return (await reader.readexactly(1))[0]


async def _read_line(reader, one, line, budget):
    # -> (line bytes without CRLF, remaining byte budget). Bounded in total and per line.
    n = 0
    while True:
        if budget <= 0:
            raise WSError("handshake response headers too large")
        c = await _read_byte(reader, one)
        budget -= 1
        if c == 10:
            break
        if n < _LINE_MAX:
            line[n] = c
            n += 1
    if n and line[n - 1] == 13:
        n -= 1
    return bytes(line[:n]), budget


async def handshake(
    reader, writer, host, port, path, protocol="ocpp1.6", basic_auth=None, key=None
):
    if key is None:
        key = _b64(os.urandom(16))
    elif isinstance(key, str):
        key = key.encode()
    h = ("[%s]" % host) if ":" in host else host
    if port not in (80, 443):  # default ports are left out of Host, as browsers do
        h = "%s:%d" % (h, port)
    req = (
        "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n"
        % (path, h, key.decode(), protocol)
    )
    if basic_auth:
        user, pw = basic_auth
        user = user.encode() if isinstance(user, str) else bytes(user)
        pw = pw.encode() if isinstance(pw, str) else bytes(pw)
        req += "Authorization: Basic %s\r\n" % _b64(user + b":" + pw).decode()
    writer.write((req + "\r\n").encode())
    await writer.drain()
    one = bytearray(1)
    line = bytearray(_LINE_MAX)
    try:
        status, budget = await _read_line(reader, one, line, _HDR_MAX)
        parts = status.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise WSError("not an HTTP response: %r" % status[:60])
        if parts[1] != b"101":
            why = _txt(b" ".join(parts[1:]))
            raise WSError("server refused the WebSocket upgrade: HTTP %s" % why)
        hdrs = {}  # only the four headers checked below are kept
        for _ in range(_HDR_LINES + 1):
            ln, budget = await _read_line(reader, one, line, budget)
            if not ln:
                break
            k = ln.find(b":")
            name = ln[:k].strip().lower()
            if k > 0 and name in _WANTED:
                hdrs[name] = ln[k + 1 :].strip()
        else:
            raise WSError("handshake response has more than %d header lines" % _HDR_LINES)
    except EOFError:
        raise WSError("server closed the connection during the handshake") from None
    if (
        hdrs.get(b"upgrade", b"").lower() != b"websocket"
        or b"upgrade" not in hdrs.get(b"connection", b"").lower()
    ):
        raise WSError("101 response without Upgrade: websocket / Connection: Upgrade")
    acc = _b64(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    if hdrs.get(b"sec-websocket-accept") != acc:
        raise WSError("bad Sec-WebSocket-Accept")
    if hdrs.get(b"sec-websocket-protocol") != protocol.encode():
        raise WSError("server did not accept subprotocol %s" % protocol)


def _ssl_context(cadata):
    import ssl

    if MICROPYTHON:
        # mbedTLS has no system trust store: without a CA we could only skip verification,
        # which would hand the connection (and the Basic auth password) to anyone.
        if not cadata:
            raise WSError("wss needs a CA certificate")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=cadata)
        return ctx
    # CPython: the given CA only, else the system store; hostname checked either way.
    return ssl.create_default_context(cadata=cadata) if cadata else ssl.create_default_context()


async def _close_stream(w):
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


async def connect(
    url, protocol="ocpp1.6", basic_auth=None, cadata=None, max_size=8192, timeout_ms=10000
):
    secure, host, port, path = parse_url(url)
    try:
        ctx = _ssl_context(cadata) if secure else None
    except (OSError, ValueError) as e:  # unreadable CA certificate
        raise WSError("bad CA certificate: %r" % e) from None
    opened = []  # the writer, so that it can be closed whatever interrupts _open

    async def _open():
        r, w = await asyncio.open_connection(host, port, ssl=ctx)
        opened.append(w)
        await handshake(r, w, host, port, path, protocol, basic_auth)
        return WebSocket(r, w, max_size)

    try:
        return await wait_for_ms(_open(), timeout_ms)
    except BaseException as e:
        if opened:
            await _close_stream(opened[0])
        if isinstance(e, WSError):
            raise
        if isinstance(e, asyncio.TimeoutError):  # before OSError: a subclass of it on CPython
            msg = "timeout after %d ms connecting to %s:%d" % (timeout_ms, host, port)
            raise WSError(msg) from None
        if isinstance(e, (OSError, EOFError, ValueError)):  # ValueError: mbedTLS cert failure
            why = "%s(%s)" % (type(e).__name__, str(e).strip())
            raise WSError("cannot connect to %s:%d: %s" % (host, port, why)) from None
        raise


class WebSocket:
    def __init__(self, reader, writer, max_size=8192):
        self._r = reader
        self._w = writer
        self.max_size = max_size  # fixed: the receive buffer is sized from it here
        self._buf = memoryview(bytearray(max_size))
        self._ctl = memoryview(bytearray(125))  # control payloads, kept apart from fragments
        # Separate header buffers: a recv may sit on half a header while another task sends.
        self._hdr = memoryview(bytearray(8))
        self._txh = memoryview(bytearray(14))
        self._tx = None  # send buffer for native masking: header + one chunk, made on first use
        self._lock = asyncio.Lock()  # MicroPython's drain() is not safe for concurrent writers
        self._readinto = getattr(reader, "readinto", None)
        self._rx_dirty = False  # part of a message consumed: a cancelled recv desyncs the stream
        self._close_sent = False
        self.closed = False
        self.last_rx = ticks_ms()

    async def _fill(self, mv):
        # Fill mv completely from the stream without an intermediate copy where possible.
        if self._readinto is None:
            mv[:] = await self._r.readexactly(len(mv))  # raises IncompleteReadError(EOFError)
            self._rx_dirty = True
            return
        pos, end = 0, len(mv)
        while pos < end:
            n = await self._readinto(mv[pos:] if pos else mv)
            if n is None:  # TLS: poll woke us but no complete record yet
                continue
            if not n:
                raise EOFError
            pos += n
            self._rx_dirty = True

    async def _fail(self, code, why):
        # Protocol failure: tell the peer (best effort), drop the connection, report.
        if not self._close_sent:
            try:
                await wait_for_ms(self._frame(_OP_CLOSE, code.to_bytes(2, "big")), _CLOSE_WAIT_MS)
            except Exception:
                pass
        await self._shut()
        raise WSClosed(code, why)

    async def recv(self):
        # -> (is_text, payload). payload is a memoryview into the receive buffer, valid only
        # until the next recv(): copy it (bytes(), str(mv, "utf-8")) if it must outlive that.
        if self.closed:
            raise WSClosed(None, "closed")
        if self._rx_dirty:
            await self._shut()
            raise WSClosed(None, "recv was interrupted mid-message")
        buf, hdr = self._buf, self._hdr
        msg_op = -1  # opcode of the message being reassembled, -1 = between messages
        total = 0
        try:
            while True:
                await self._fill(hdr[:2])
                self.last_rx = ticks_ms()
                b0, n = hdr[0], hdr[1]
                op = b0 & 0x0F
                if b0 & 0x70:
                    await self._fail(1002, "reserved bits set")
                if n & 0x80:
                    await self._fail(1002, "masked frame from server")
                n &= 0x7F
                if n == 126:
                    await self._fill(hdr[:2])
                    n = hdr[0] << 8 | hdr[1]
                elif n == 127:
                    await self._fill(hdr[:8])
                    n = int.from_bytes(hdr[:8], "big")
                if op >= _OP_CLOSE:
                    if op > _OP_PONG:
                        await self._fail(1002, "unknown opcode %d" % op)
                    if not b0 & 0x80 or n > 125:
                        await self._fail(1002, "fragmented or oversized control frame")
                    p = self._ctl[:n]
                    if n:
                        await self._fill(p)
                    if op == _OP_PING:
                        await self._frame(_OP_PONG, p)
                    elif op == _OP_CLOSE:
                        await self._closed_by_peer(p)
                    if msg_op < 0:
                        self._rx_dirty = False
                    continue
                if op == _OP_CONT:
                    if msg_op < 0:
                        await self._fail(1002, "continuation frame without a message")
                elif op > _OP_BINARY:
                    await self._fail(1002, "unknown opcode %d" % op)
                elif msg_op >= 0:
                    await self._fail(1002, "new message inside a fragmented one")
                else:
                    msg_op = op
                if total + n > self.max_size:  # checked before reading a single payload byte
                    await self._fail(1009, "message too big")
                if n:
                    await self._fill(buf[total : total + n])
                    total += n
                if b0 & 0x80:
                    self._rx_dirty = False
                    return msg_op == _OP_TEXT, buf[:total]
        except (EOFError, OSError) as e:
            was_closed = self.closed
            await self._shut()
            if was_closed:  # our own close() pulled the socket from under a pending recv
                why = "closed"
            else:
                why = "eof" if isinstance(e, EOFError) else "connection lost: %r" % e
            raise WSClosed(None, why) from None

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

    async def _frame(self, op, payload):
        # One frame, FIN set, masked with a fresh key (RFC 6455 5.3: clients must mask).
        if self.closed or self._close_sent:
            raise WSClosed(None, "closed")
        if op == _OP_CLOSE:
            self._close_sent = True
        mv = memoryview(payload)
        n = len(mv)
        h = self._txh
        h[0] = 0x80 | op
        if n < 126:
            h[1] = 0x80 | n
            i = 2
        elif n < 65536:
            h[1] = 0xFE
            h[2:4] = n.to_bytes(2, "big")
            i = 4
        else:
            h[1] = 0xFF
            h[2:10] = n.to_bytes(8, "big")
            i = 10
        h[i : i + 4] = os.urandom(4)
        i += 4
        pos = 0
        sent = False
        async with self._lock:
            w = self._w
            if w is None:  # shut while we waited for the lock
                raise WSClosed(None, "closed")
            try:
                while True:
                    k = min(_CHUNK, n - pos)
                    w.write(self._masked(mv, pos, k, i))
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

    def _masked(self, mv, pos, k, i):
        """The bytes to write for payload mv[pos:pos+k], masked, behind the first i bytes of the
        header (i is 0 after the first chunk). Chunks start at multiples of 4, so the key starts
        at its first byte in each; the key sits at the end of the header in self._txh."""
        h = self._txh
        n7 = h[1] & 0x7F  # the length encoding says where the key is
        koff = 2 if n7 < 126 else 4 if n7 == 126 else 10
        if _xmask is not None:
            # Copy behind the header in one reused buffer and mask in place: the only
            # allocations are memoryview slices.
            tx = self._tx
            if tx is None:
                tx = self._tx = memoryview(bytearray(_CHUNK + 14))
            if i:
                tx[:i] = h[:i]
            tx[i : i + k] = mv[pos : pos + k]
            _xmask(tx, i, k, h, koff)
            return tx[: i + k]
        # XOR as big ints: no per-byte Python loop. The header rides in the same int, so a small
        # message is one write (one TLS record).
        width = (k + 3) & ~3
        m = int.from_bytes(bytes(h[koff : koff + 4]) * (width >> 2), "big") >> ((width - k) << 3)
        x = int.from_bytes(mv[pos : pos + k], "big") ^ m
        if i:
            x |= int.from_bytes(h[:i], "big") << (k << 3)
        return x.to_bytes(i + k, "big")

    def send(self, data, text=True):
        # A plain function returning the frame's coroutine: awaiting it is the same to the
        # caller, and saves a coroutine object per message.
        if isinstance(data, str):
            data = data.encode()
        return self._frame(_OP_TEXT if text else _OP_BINARY, data)

    async def ping(self, data=b""):
        if isinstance(data, str):
            data = data.encode()
        if len(data) > 125:
            raise ValueError("ping payload > 125 bytes")
        await self._frame(_OP_PING, data)

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
            await _close_stream(w)
