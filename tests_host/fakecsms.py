"""An in-process fake central system for CPython tests of the engine: it replaces ocpp.ws.connect
with a fake WebSocket whose frames go straight to a scripted peer (no network)."""
import asyncio
import json

import schemas
from ocpp import compat, ws


class FakeWS:
    def __init__(self, peer):
        self.peer = peer
        self.inbox = asyncio.Queue()
        self.last_rx = compat.ticks_ms()
        self.closed = False
        self.pings = 0

    async def recv(self):
        item = await self.inbox.get()
        if item is None:
            raise ws.WSClosed(1000, "closed")
        self.last_rx = compat.ticks_ms()
        return True, item.encode()

    async def send(self, data, text=True):
        if self.closed:
            raise OSError("closed")
        self.peer.on_frame(self, data if isinstance(data, str) else bytes(data).decode())

    async def serve(self, handle):
        # As ocpp.ws.WebSocket.serve(): each message handed to handle(), its answer sent.
        while True:
            _, data = await self.recv()
            data = handle(data)
            if data is not None:
                await self.send(data)

    async def ping(self, data=b""):
        self.pings += 1
        if self.peer.answer_pings:
            self.last_rx = compat.ticks_ms()

    async def close(self, code=1000, reason=""):
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(None)


class FakeCsms:
    def __init__(self):
        self.frames = []  # every frame the charge point sent, parsed
        self.calls = []  # (action, payload) of every CALL received
        self.answers = {}  # action -> payload dict, or callable(payload) -> payload
        self.errors = {}  # action -> error code to answer with
        self.silent = set()  # actions left unanswered (to provoke timeouts)
        self.down = False  # connect() fails while True
        self.connects = 0
        self.answer_pings = True
        self.ws = None
        self._pending = {}
        self._actions = {}
        self.schema_errors = []
        self._tx = 0
        self._seq = 0

    def install(self, monkeypatch):
        async def connect(url, protocol="ocpp1.6", basic_auth=None, cadata=None, max_size=0,
                          timeout_ms=0):
            self.url, self.auth = url, basic_auth
            if self.down:
                raise OSError("connection refused")
            self.connects += 1
            self.ws = FakeWS(self)
            return self.ws

        monkeypatch.setattr(ws, "connect", connect)

    def default(self, action, p):
        now = "2026-01-01T00:00:00Z"
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": now, "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action in ("Authorize", "StopTransaction"):
            return {"idTagInfo": {"status": "Accepted"}}
        if action == "StartTransaction":
            self._tx += 1
            return {"transactionId": self._tx, "idTagInfo": {"status": "Accepted"}}
        return {}

    def on_frame(self, sock, text):
        msg = json.loads(text)
        self.frames.append(msg)
        if msg[0] == 2:
            action, payload = msg[2], msg[3]
            self._validate(schemas.check_call, action, payload)
            self.calls.append((action, payload))
            if action in self.silent:
                return
            if action in self.errors:
                sock.inbox.put_nowait(json.dumps([4, msg[1], self.errors[action], "", {}]))
                return
            a = self.answers.get(action)
            r = a(payload) if callable(a) else a if a is not None else self.default(action, payload)
            sock.inbox.put_nowait(json.dumps([3, msg[1], r]))
        else:
            fut = self._pending.pop(msg[1], None)
            if msg[0] == 3 and msg[1] in self._actions:
                self._validate(schemas.check_result, self._actions.pop(msg[1]), msg[2])
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def _validate(self, check, action, payload):
        # Recorded, not raised: raising here would surface inside the engine under test. The
        # `csms` fixture fails the test when anything was recorded.
        try:
            check(action, payload)
        except Exception as e:
            self.schema_errors.append("%s: %s" % (action, e))

    def push(self, text):
        """Send raw text to the charge point."""
        self.ws.inbox.put_nowait(text)

    async def call(self, action, payload, timeout=5):
        """A CALL from the central system; returns the charge point's answer frame."""
        self._seq += 1
        uid = "cs-%d" % self._seq
        fut = asyncio.get_running_loop().create_future()
        self._pending[uid] = fut
        self._actions[uid] = action
        self.push(json.dumps([2, uid, action, payload]))
        return await asyncio.wait_for(fut, timeout)

    def actions(self):
        return [a for a, _ in self.calls]

    def of(self, action):
        return [p for a, p in self.calls if a == action]

    async def wait_for(self, pred, timeout=5):
        """Wait until pred() is true, polling the event loop."""
        end = asyncio.get_running_loop().time() + timeout
        while not pred():
            if asyncio.get_running_loop().time() > end:
                raise AssertionError("timed out; calls so far: %s" % self.actions())
            await asyncio.sleep(0.01)
