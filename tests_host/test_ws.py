# Host tests of lib/ocpp/ws.py: scripted fake streams for the protocol details, a real
# `websockets` server on loopback for interoperability, and MicroPython running the same module.
import asyncio
import base64
import hashlib
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile

import pytest

from ocpp import ws, wsframe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(REPO, ".venv", "bin", "micropython")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3 example
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


# --- fake stream and frame codecs ------------------------------------------------------------


class FakeSock:
    """Reader and writer in one, fed with scripted server bytes; records what the client wrote.

    eof=False makes reads block (instead of hitting EOF) once the script is used up."""

    def __init__(self, data=b"", eof=True):
        self.inbuf = bytes(data)
        self.pos = 0
        self.eof = eof
        self.out = bytearray()
        self.closed = False
        self.more = None

    def feed(self, data):
        self.inbuf += data
        if self.more:
            self.more.set()

    async def _wait_more(self):
        if self.eof:
            return False
        self.more = asyncio.Event()
        await self.more.wait()  # until feed() or cancelled
        return True

    async def readexactly(self, n):
        while len(self.inbuf) - self.pos < n:
            if not await self._wait_more():
                part = self.inbuf[self.pos :]
                self.pos = len(self.inbuf)
                raise asyncio.IncompleteReadError(part, n)
        self.pos += n
        return self.inbuf[self.pos - n : self.pos]

    async def read(self, n=-1):
        # As asyncio.StreamReader.read: waits for at least one byte, b"" only at EOF.
        while self.pos >= len(self.inbuf):
            if not await self._wait_more():
                return b""
        data = self.inbuf[self.pos :] if n < 0 else self.inbuf[self.pos : self.pos + n]
        self.pos += len(data)
        return data

    async def readline(self):
        i = self.inbuf.find(b"\n", self.pos)
        end = len(self.inbuf) if i < 0 else i + 1
        data = self.inbuf[self.pos : end]
        self.pos = end
        return data

    def write(self, data):
        if self.closed:
            raise ConnectionResetError("write on closed fake")
        self.out += data

    async def drain(self):
        pass

    def close(self):
        self.closed = True

    async def wait_closed(self):
        pass


class FakeSockInto(FakeSock):
    """Like MicroPython's Stream: readinto() returning at most 3 bytes at a time, 0 at EOF."""

    async def readinto(self, buf):
        while self.pos >= len(self.inbuf):
            if not await self._wait_more():
                return 0
        n = min(len(buf), 3, len(self.inbuf) - self.pos)
        buf[:n] = self.inbuf[self.pos : self.pos + n]
        self.pos += n
        return n


FAKES = [FakeSock, FakeSockInto]


def frame(op, payload=b"", fin=True, rsv=0, mask=None):
    """Server-side frame encoder (mask only to build illegal frames)."""
    b0 = (0x80 if fin else 0) | rsv << 4 | op
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def client_frames(data):
    """Decode what the client wrote: list of (fin, op, payload, mask, header length byte)."""
    out = []
    pos = 0
    data = bytes(data)
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b1 & 0x80, "client frame not masked"
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            (n,) = struct.unpack(">H", data[pos : pos + 2])
            pos += 2
        elif n == 127:
            (n,) = struct.unpack(">Q", data[pos : pos + 8])
            pos += 8
        mask = data[pos : pos + 4]
        pos += 4
        masked = data[pos : pos + n]
        pos += n
        rep = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(masked, "big") ^ int.from_bytes(rep, "big")).to_bytes(n, "big")
        out.append((bool(b0 & 0x80), b0 & 0x0F, payload, mask, b1 & 0x7F))
    return out


def response(status="101 Switching Protocols", accept=ACCEPT, protocol="ocpp1.6", extra=b""):
    lines = ["HTTP/1.1 " + status]
    if status.startswith("101"):
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if accept:
        lines.append("Sec-WebSocket-Accept: " + accept)
    if protocol:
        lines.append("sec-websocket-PROTOCOL: " + protocol)  # header names are case-insensitive
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + extra


def new_ws(data, cls=FakeSock, max_size=8192, eof=True):
    fake = cls(data, eof)
    return fake, ws.WebSocket(fake, fake, max_size)


async def expect_closed(sock, code):
    with pytest.raises(ws.WSClosed) as ei:
        await sock.recv()
    assert ei.value.code == code
    return ei.value


# --- parse_url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, want",
    [
        ("ws://csms.example.com/ocpp/CP001", (False, "csms.example.com", 80, "/ocpp/CP001")),
        ("wss://csms.example.com/ocpp/CP001", (True, "csms.example.com", 443, "/ocpp/CP001")),
        ("ws://10.0.0.2:9000", (False, "10.0.0.2", 9000, "/")),
        ("WSS://h:8443/a/b?x=1&y=2", (True, "h", 8443, "/a/b?x=1&y=2")),
        ("ws://h?x=1", (False, "h", 80, "/?x=1")),
        ("ws://[::1]:9000/cp", (False, "::1", 9000, "/cp")),
        ("ws://user:pw@h/cp#frag", (False, "h", 80, "/cp")),
    ],
)
def test_parse_url(url, want):
    assert ws.parse_url(url) == want


@pytest.mark.parametrize("url", ["http://h/", "h:80/x", "ws://", "ws://h:x/", "ws://h:0/"])
def test_parse_url_rejects(url):
    with pytest.raises(ws.WSError):
        ws.parse_url(url)


# --- handshake --------------------------------------------------------------------------------


def do_handshake(resp, cls=FakeSock, **kw):
    fake = cls(resp)
    kw.setdefault("key", KEY)
    run(ws.handshake(fake, fake, "csms.example.com", 9000, "/ocpp/CP001", **kw))
    return fake


@pytest.mark.parametrize("cls", FAKES)
def test_handshake_request_and_success(cls):
    trailing = frame(1, b"[2]")  # server speaks right after the 101: must stay unread
    fake = do_handshake(response(extra=trailing), cls, basic_auth=("CP001", "s3cr3t"))
    req = bytes(fake.out)
    assert req.endswith(b"\r\n\r\n")
    lines = req[:-4].decode().split("\r\n")
    assert lines[0] == "GET /ocpp/CP001 HTTP/1.1"
    hdrs = dict(line.split(": ", 1) for line in lines[1:])
    assert hdrs["Host"] == "csms.example.com:9000"
    assert hdrs["Upgrade"] == "websocket"
    assert hdrs["Connection"] == "Upgrade"
    assert hdrs["Sec-WebSocket-Key"] == KEY
    assert hdrs["Sec-WebSocket-Version"] == "13"
    assert hdrs["Sec-WebSocket-Protocol"] == "ocpp1.6"
    assert hdrs["Authorization"] == "Basic " + base64.b64encode(b"CP001:s3cr3t").decode()
    assert fake.inbuf[fake.pos :] == trailing
    sock = ws.WebSocket(fake, fake)
    assert run(sock.recv()) == (True, b"[2]")


def test_handshake_random_key_and_bytes_password():
    class Echo(FakeSock):
        def write(self, data):  # answer with the accept value for whatever key was sent
            super().write(data)
            key = bytes(data).split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
            acc = base64.b64encode(hashlib.sha1(key + ws_guid).digest()).decode()
            self.inbuf = response(accept=acc)
            self.keys.append(base64.b64decode(key))

    ws_guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    keys = []
    for _ in range(2):
        fake = Echo()
        fake.keys = keys
        run(ws.handshake(fake, fake, "h", 80, "/", basic_auth=("CP1", b"\x01\xffpw")))
        assert b"Host: h\r\n" in fake.out
        assert ("Basic " + base64.b64encode(b"CP1:\x01\xffpw").decode()).encode() in fake.out
    assert len(keys[0]) == 16 and keys[0] != keys[1]


@pytest.mark.parametrize(
    "resp, msg",
    [
        (response(accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA="), "bad Sec-WebSocket-Accept"),
        (response(accept=None), "bad Sec-WebSocket-Accept"),
        (response(protocol=None), "server did not accept subprotocol ocpp1.6"),
        (response(protocol="ocpp2.0.1"), "server did not accept subprotocol ocpp1.6"),
        (response("401 Unauthorized"), "HTTP 401 Unauthorized"),
        (response("404 Not Found"), "HTTP 404 Not Found"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response"),
        (b"HTTP/1.1 101 Switching", "closed the connection during the handshake"),
    ],
)
def test_handshake_failures(resp, msg):
    with pytest.raises(ws.WSError) as ei:
        do_handshake(resp)
    assert msg in str(ei.value)


@pytest.mark.parametrize(
    "resp",
    [
        response(extra=b"").replace(b"\r\n\r\n", b"\r\n" + b"X-Pad: 1\r\n" * 41 + b"\r\n"),
        b"HTTP/1.1 101 Switching Protocols\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
    ],
)
def test_handshake_oversize_headers(resp):
    fake = FakeSockInto(resp)
    with pytest.raises(ws.WSError, match="header"):
        run(ws.handshake(fake, fake, "h", 80, "/", key=KEY))
    assert fake.pos <= 4096  # stopped reading at the bound


# --- sending ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, len7", [(0, 0), (1, 1), (125, 125), (126, 126), (65535, 126), (65536, 127), (70001, 127)]
)
def test_send_masked_lengths(n, len7):
    fake, sock = new_ws(b"")
    payload = os.urandom(n)
    run(sock.send(payload, text=False))
    run(sock.send(payload, text=False))
    (f1, f2) = client_frames(fake.out)
    for fin, op, got, _, l7 in (f1, f2):
        assert fin and op == 2 and l7 == len7 and got == payload
    assert f1[3] != f2[3]  # fresh mask per frame
    hl = {0: 6, 126: 8, 127: 14}.get(len7, 6)
    assert len(fake.out) == 2 * (hl + n)
    if n >= 8:
        assert fake.out[hl : hl + n] != payload  # really masked on the wire


def test_send_text_str_memoryview_and_ping():
    fake, sock = new_ws(b"")
    run(sock.send('[2,"1","Heartbeat",{}] é'))
    run(sock.send(memoryview(bytearray(b"abcdef"))[1:4], text=False))
    run(sock.ping(b"hi"))
    with pytest.raises(ValueError):
        run(sock.ping(b"x" * 126))
    got = [(op, p) for _, op, p, _, _ in client_frames(fake.out)]
    assert got == [(1, '[2,"1","Heartbeat",{}] é'.encode()), (2, b"bcd"), (9, b"hi")]


def test_close_idempotent_and_send_after_close():
    fake, sock = new_ws(b"")
    run(sock.close(4000, "bye"))
    run(sock.close())
    assert sock.closed and fake.closed
    [(fin, op, payload, _, _)] = client_frames(fake.out)
    assert (fin, op, payload) == (True, 8, b"\x0f\xa0bye")
    with pytest.raises(ws.WSClosed):
        run(sock.send("x"))
    with pytest.raises(ws.WSClosed):
        run(sock.recv())


def test_close_on_broken_socket_does_not_raise():
    fake, sock = new_ws(b"")
    fake.closed = True  # every write raises ConnectionResetError
    with pytest.raises(OSError):
        run(sock.send("x"))
    with pytest.raises(ws.WSClosed):  # a frame too big to be written at once
        run(sock.send("x" * 5000))
    run(sock.close())
    assert sock.closed
    with pytest.raises(ws.WSClosed):
        run(sock.send("x"))


# --- receiving --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", FAKES)
def test_recv_lengths_and_types(cls):
    big = os.urandom(70000)
    data = frame(1, b"hello") + frame(2, b"\x00" * 126) + frame(2, big) + frame(1, b"")
    fake, sock = new_ws(data, cls, max_size=70000)

    async def go():
        assert await sock.recv() == (True, b"hello")
        assert await sock.recv() == (False, b"\x00" * 126)
        is_text, mv = await sock.recv()
        assert not is_text and isinstance(mv, memoryview) and mv == big
        assert await sock.recv() == (True, b"")
        await expect_closed(sock, None)

    run(go())
    assert fake.out == b""  # nothing to answer


@pytest.mark.parametrize("cls", FAKES)
def test_fragments_with_ping_between(cls):
    data = (
        frame(1, b"[2,", fin=False)
        + frame(9, b"ping!")
        + frame(0, b'"1",', fin=False)
        + frame(10, b"unsolicited")
        + frame(0, b'"Heartbeat",{}]')
        + frame(2, b"\x01\x02", fin=False)
        + frame(0, b"\x03")
    )
    fake, sock = new_ws(data, cls)

    async def go():
        assert await sock.recv() == (True, b'[2,"1","Heartbeat",{}]')
        assert await sock.recv() == (False, b"\x01\x02\x03")

    run(go())
    assert [(op, p) for _, op, p, _, _ in client_frames(fake.out)] == [(10, b"ping!")]


def test_ping_pong_and_last_rx(monkeypatch):
    clock = [1000]
    monkeypatch.setattr(wsframe, "ticks_ms", lambda: clock[0])
    fake, sock = new_ws(frame(9, b"") + frame(9, b"x" * 125) + frame(10, b"p"), eof=False)
    assert sock.last_rx == 1000

    async def go():
        clock[0] = 2000
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sock.recv(), 0.05)

    run(go())
    assert sock.last_rx == 2000
    pongs = [(op, p) for _, op, p, _, _ in client_frames(fake.out)]
    assert pongs == [(10, b""), (10, b"x" * 125)]
    # That wait timed out between messages: the connection is still usable.
    fake.feed(frame(1, b"after"))
    assert run(sock.recv()) == (True, b"after")


@pytest.mark.parametrize("cls", FAKES)
def test_recv_interrupted_mid_message_carries_on(cls):
    # A recv() cancelled half-way through a fragmented message (a ping answered, a fragment
    # joined, the next header half read) loses nothing: the next recv() completes the message.
    data = frame(1, b"[2,", fin=False) + frame(9, b"p") + frame(0, b'"1",', fin=False)
    rest = frame(0, b'"Heartbeat",{}]') + frame(1, b"next")
    fake, sock = new_ws(data + rest[:1], cls, eof=False)

    async def go():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sock.recv(), 0.05)
        fake.feed(rest[1:])
        assert await sock.recv() == (True, b'[2,"1","Heartbeat",{}]')
        assert await sock.recv() == (True, b"next")

    run(go())
    assert [(op, p) for _, op, p, _, _ in client_frames(fake.out)] == [(10, b"p")]
    assert not fake.closed


@pytest.mark.parametrize("cls", FAKES)
def test_serve_answers_each_message_until_closed(cls):
    # serve() hands each payload to the handler and sends back what it returns; pings are
    # answered on the way; the end of the connection ends it with WSClosed.
    data = (frame(1, b"one") + frame(9, b"p") + frame(1, b"tw", fin=False) + frame(0, b"o")
            + frame(2, b"\x00bin") + frame(8, b"\x03\xe8"))
    fake, sock = new_ws(data, cls)
    got = []

    def handle(payload):
        got.append((sock.text, bytes(payload)))
        return None if payload == b"two" else "re:" + str(payload[-1])

    with pytest.raises(ws.WSClosed) as ei:
        run(sock.serve(handle))
    assert ei.value.code == 1000
    assert got == [(True, b"one"), (True, b"two"), (False, b"\x00bin")]
    sent = [(op, p) for _, op, p, _, _ in client_frames(fake.out)]
    assert sent == [(1, b"re:101"), (10, b"p"), (1, b"re:110"), (8, b"\x03\xe8")]


def test_recv_back_to_back_messages_in_one_read():
    # The bytes read ahead behind a message are the next ones: nothing is lost or doubled.
    msgs = [b"a" * n for n in (1, 125, 126, 300, 0, 7)]
    data = b"".join(frame(1, m) for m in msgs) + frame(9, b"x") + frame(2, b"end")
    fake, sock = new_ws(data, FakeSock, max_size=300)

    async def go():
        for m in msgs:
            assert await sock.recv() == (True, m)
        assert await sock.recv() == (False, b"end")

    run(go())
    assert [(op, p) for _, op, p, _, _ in client_frames(fake.out)] == [(10, b"x")]


@pytest.mark.parametrize("cls", FAKES)
def test_long_messages_get_a_buffer_of_their_own(cls):
    # Messages longer than the resident buffer (whole or in fragments, read ahead behind short
    # ones) come out whole; afterwards the socket is back on its resident buffer.
    long1, long2 = os.urandom(3000), os.urandom(4990)
    data = (frame(1, b"short") + frame(2, long1) + frame(1, b"x")
            + frame(2, long2[:1000], fin=False) + frame(9, b"p") + frame(0, long2[1000:])
            + frame(1, b"end"))
    fake, sock = new_ws(data, cls, max_size=5000)
    resident = sock._buf

    async def go():
        assert await sock.recv() == (True, b"short")
        assert await sock.recv() == (False, long1)
        assert await sock.recv() == (True, b"x")
        assert await sock.recv() == (False, long2)
        assert await sock.recv() == (True, b"end")
        await expect_closed(sock, None)  # the next recv() drops "end": nothing left over
        assert sock._buf is resident and len(resident) < 5000

    run(go())
    assert [(op, p) for _, op, p, _, _ in client_frames(fake.out)] == [(10, b"p")]


@pytest.mark.parametrize("cls", FAKES)
def test_a_long_single_frame_gets_a_buffer_of_its_length(cls):
    # Not max_size: on a small heap one 60 KB block may not exist when 3 KB do.
    long1 = os.urandom(3000)
    fake, sock = new_ws(frame(2, long1) + frame(1, b"end"), cls, max_size=60000)

    async def go():
        assert await sock.recv() == (False, long1)
        assert 3000 < len(sock._buf) < 3300  # handed out of the buffer it was read into
        assert await sock.recv() == (True, b"end")

    run(go())


def test_long_message_without_memory_for_it(monkeypatch):
    fake, sock = new_ws(frame(1, b"ok") + frame(2, b"y" * 3000), max_size=5000)

    def no_memory(n):
        raise MemoryError

    async def go():
        assert await sock.recv() == (True, b"ok")
        monkeypatch.setattr(wsframe, "bytearray", no_memory, raising=False)
        await expect_closed(sock, 1009)

    run(go())
    assert client_frames(fake.out)[-1][1:3] == (8, b"\x03\xf1")


def test_recv_full_message_with_control_frame_between_fragments():
    # The receive buffer holds a maximal message whatever comes between its fragments.
    data = (frame(1, b"a" * 99, fin=False) + frame(9, b"p" * 125) + frame(0, b"b", fin=False)
            + frame(8, b"\x03\xe8" + b"r" * 123))
    fake, sock = new_ws(frame(10, b"q" * 125) + data, FakeSock, max_size=100)
    assert run(expect_closed(sock, 1000)).reason == "r" * 123
    assert [op for _, op, _, _, _ in client_frames(fake.out)] == [10, 8]


@pytest.mark.parametrize("cls", FAKES)
def test_close_from_server(cls):
    fake, sock = new_ws(frame(8, b"\x03\xe9going away"), cls)
    err = run(expect_closed(sock, 1001))
    assert err.reason == "going away" and "1001" in str(err)
    assert [(op, p) for _, op, p, _, _ in client_frames(fake.out)] == [(8, b"\x03\xe9")]
    assert sock.closed and fake.closed
    run(sock.close())  # nothing more is sent
    assert len(client_frames(fake.out)) == 1


def test_close_from_server_without_code():
    fake, sock = new_ws(frame(8))
    run(expect_closed(sock, None))
    assert [(op, p) for _, op, p, _, _ in client_frames(fake.out)] == [(8, b"")]


@pytest.mark.parametrize("cls", FAKES)
@pytest.mark.parametrize("first", [b"", b"x" * 60])
def test_oversize_message(cls, first):
    # 64-bit length claiming 1 GB: must be refused from the header alone.
    head = frame(0 if first else 2, b"x" * 65536)[:2] + struct.pack(">Q", 1 << 30)
    data = (frame(1, first, fin=False) if first else b"") + head + b"y" * 500
    fake, sock = new_ws(data, cls, max_size=100)
    assert run(expect_closed(sock, 1009)).reason == "message too big"
    assert fake.pos <= 100 + 140  # read no further than the receive buffer
    assert [(op, p) for _, op, p, _, _ in client_frames(fake.out)] == [(8, b"\x03\xf1")]
    assert fake.closed and sock.closed


def test_oversize_by_fragments():
    data = frame(1, b"a" * 60, fin=False) + frame(0, b"b" * 41)
    fake, sock = new_ws(data, max_size=100)
    run(expect_closed(sock, 1009))
    fake2, sock2 = new_ws(frame(1, b"a" * 60, fin=False) + frame(0, b"b" * 40), max_size=100)
    assert run(sock2.recv()) == (True, b"a" * 60 + b"b" * 40)


@pytest.mark.parametrize(
    "data",
    [
        frame(1, b"hi", mask=b"\x01\x02\x03\x04"),  # masked frame from server
        frame(1, b"hi", rsv=4),  # RSV1 without an extension
        frame(1, b"hi", rsv=1),
        frame(3, b"hi"),  # reserved data opcode
        frame(11, b""),  # reserved control opcode
        frame(9, b"x" * 126),  # control frame too long
        frame(9, b"x", fin=False),  # fragmented control frame
        frame(0, b"x"),  # continuation without start
        frame(1, b"x", fin=False) + frame(1, b"y"),  # new message mid-fragmented one
        frame(8, b"\x03"),  # 1-byte close payload
    ],
)
def test_protocol_errors(data):
    fake, sock = new_ws(data)
    run(expect_closed(sock, 1002))
    frames = client_frames(fake.out)
    assert frames[-1][1] == 8 and frames[-1][2] == b"\x03\xea"
    assert fake.closed


@pytest.mark.parametrize("cls", FAKES)
@pytest.mark.parametrize("data", [b"", frame(1, b"abcdef")[:4], frame(2, b"x" * 300)[:3]])
def test_eof(cls, data):
    fake, sock = new_ws(data, cls)
    assert run(expect_closed(sock, None)).reason == "eof"
    assert sock.closed and fake.closed


# --- against real servers ---------------------------------------------------------------------


async def echo(conn):
    async for msg in conn:
        await conn.send(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_loopback_websockets_server():
    from websockets.asyncio.server import serve

    async def go():
        async with serve(echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], max_size=None) as srv:
            port = srv.sockets[0].getsockname()[1]
            url = "ws://127.0.0.1:%d/ocpp/CP001" % port
            sock = await ws.connect(url, basic_auth=("CP001", "pw"), max_size=80000)
            big = os.urandom(70000)
            await sock.send(big, text=False)
            assert await sock.recv() == (False, big)
            await sock.send('[2,"1","Heartbeat",{}]')
            is_text, mv = await sock.recv()
            assert is_text and str(mv, "utf-8") == '[2,"1","Heartbeat",{}]'
            await sock.ping(b"p")
            await sock.close()
            assert sock.closed

    run(go())


def test_loopback_server_without_subprotocol():
    from websockets.asyncio.server import serve

    async def go():
        async with serve(echo, "127.0.0.1", 0) as srv:
            port = srv.sockets[0].getsockname()[1]
            with pytest.raises(ws.WSError, match="did not accept subprotocol ocpp1.6"):
                await ws.connect("ws://127.0.0.1:%d/x" % port)

    run(go())


def test_connect_refused_and_timeout():
    async def go():
        port = free_port()
        with pytest.raises(ws.WSError, match="127.0.0.1:%d" % port):
            await ws.connect("ws://127.0.0.1:%d/" % port)
        readers = []

        async def mute(r, w):  # accepts, never answers
            readers.append(r)

        srv = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        with pytest.raises(ws.WSError, match="timeout"):
            await ws.connect("ws://127.0.0.1:%d/" % port, timeout_ms=100)
        # read() returning at all means EOF: the client closed its socket after the timeout.
        assert (await asyncio.wait_for(readers[0].read(), 1)).startswith(b"GET / HTTP/1.1")
        srv.close()

    run(go())


def make_cert(tmp):
    """Self-signed CA-usable cert for localhost/127.0.0.1 via the openssl CLI."""
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available")
    key, crt = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
    cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
    cmd += " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
    subprocess.run(cmd.split() + ["-keyout", key, "-out", crt], check=True, capture_output=True)
    with open(crt) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx, der


def test_loopback_wss():
    from websockets.asyncio.server import serve

    with tempfile.TemporaryDirectory() as tmp:
        sctx, der = make_cert(tmp)

    async def go():
        async with serve(echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], ssl=sctx) as srv:
            port = srv.sockets[0].getsockname()[1]
            sock = await ws.connect("wss://localhost:%d/cp" % port, cadata=der)
            await sock.send("x" * 3000)
            assert await sock.recv() == (True, b"x" * 3000)
            await sock.close()
            # Certificate not signed by the given CA: refused.
            with tempfile.TemporaryDirectory() as tmp2:
                other = make_cert(tmp2)[1]
            with pytest.raises(ws.WSError, match="localhost:%d" % port):
                await ws.connect("wss://localhost:%d/cp" % port, cadata=other)

    run(go())


# --- the same module on real MicroPython ------------------------------------------------------


def run_micropython(*argv, ssl_ctx=None):
    if not os.path.exists(MICROPYTHON):
        pytest.skip("no .venv/bin/micropython")
    from websockets.asyncio.server import serve

    async def go():
        async with serve(
            echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], max_size=None, ssl=ssl_ctx
        ) as srv:
            port = srv.sockets[0].getsockname()[1]
            # ".frozen" keeps the frozen asyncio reachable: MICROPYPATH replaces the default path.
            env = dict(os.environ, MICROPYPATH=os.path.join(REPO, "lib") + ":.frozen")
            proc = await asyncio.create_subprocess_exec(
                MICROPYTHON,
                os.path.join(REPO, "tests_host", "mp_ws_smoke.py"),
                str(port),
                *argv,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 4)
            return proc.returncode, out.decode()

    return run(go())


def test_micropython_smoke():
    rc, out = run_micropython()
    assert rc == 0 and out.strip().endswith("OK"), out


def test_micropython_smoke_wss():
    with tempfile.TemporaryDirectory() as tmp:
        sctx, der = make_cert(tmp)
        paths = [os.path.join(tmp, "ca.der"), os.path.join(tmp, "other.der")]
        for path, data in zip(paths, (der, make_cert(tmp)[1]), strict=True):
            with open(path, "wb") as f:
                f.write(data)
        rc, out = run_micropython(*paths, ssl_ctx=sctx)
    assert rc == 0 and out.strip().endswith("OK"), out


def test_imports_our_package():
    assert ws.__file__.startswith(os.path.join(REPO, "lib")), ws.__file__
    assert sys.modules["ocpp.compat"].__file__.startswith(os.path.join(REPO, "lib"))


def test_recv_half_header_while_sending():
    # MicroPython delivers headers in pieces; a concurrent send must not clobber the half read.
    fake, sock = new_ws(b"", FakeSockInto, eof=False)

    async def go():
        task = asyncio.ensure_future(sock.recv())
        fake.feed(frame(1, b"z" * 200)[:1])
        await asyncio.sleep(0.01)
        await sock.send(b"q" * 70000, text=False)
        fake.feed(frame(1, b"z" * 200)[1:])
        assert await task == (True, b"z" * 200)

    run(go())
    assert client_frames(fake.out)[0][2] == b"q" * 70000
