# RFC 6455 WebSocket client over asyncio streams, for OCPP-J 1.6 (MicroPython 1.29 and CPython).
# Only what a charge point needs: client side, one subprotocol, no extensions, no compression.
# This module opens the connection (URL, TCP/TLS, HTTP upgrade); the WebSocket it returns does
# the framing (wsframe.py).
import asyncio
import binascii
import hashlib
import os

from .compat import MICROPYTHON, const, wait_for_ms
from .wsframe import WebSocket, WSClosed, close_stream  # noqa: F401  (WSClosed: ws.WSClosed)

_HDR_MAX = const(4096)  # handshake response: total bytes ...
_HDR_LINES = const(40)  # ... header lines ...
_LINE_MAX = const(256)  # ... and bytes kept per line (longer lines are cut; ours are short)


class WSError(Exception):
    """Handshake or connection set-up failure; str(e) is meant for humans."""


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
            await close_stream(opened[0])
        if isinstance(e, WSError):
            raise
        if isinstance(e, asyncio.TimeoutError):  # before OSError: a subclass of it on CPython
            msg = "timeout after %d ms connecting to %s:%d" % (timeout_ms, host, port)
            raise WSError(msg) from None
        if isinstance(e, (OSError, EOFError, ValueError)):  # ValueError: mbedTLS cert failure
            why = "%s(%s)" % (type(e).__name__, str(e).strip())
            raise WSError("cannot connect to %s:%d: %s" % (host, port, why)) from None
        raise
