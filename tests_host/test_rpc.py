"""lib/ocpp/rpc.py on its own: routing of incoming frames, handler failures, the CALL frame and
the matching of answers (the engine-level behaviour is in test_engine.py)."""
import asyncio
import json

import pytest

from ocpp import rpc, ws
from test_ws import FakeSock, client_frames

SPEC = (("n", rpc.INT | rpc.REQ, (0, 9)),)


def make(handlers=None):
    logs = []
    return rpc.Rpc(handlers or {}, logs.append), logs


def answer(r, frame):
    out = r.handle(memoryview(frame.encode()))
    return None if out is None else json.loads(out)


def test_handler_failures_are_internal_errors_and_logged():
    r, logs = make({
        "Boom": (SPEC, lambda p: 1 / 0),
        "Bytes": (SPEC, lambda p: {"x": b"raw"}),  # not JSON-serialisable
        "Ok": (SPEC, lambda p: {"n": p["n"] + 1}),
        "Verdict": (SPEC, lambda p: (_ for _ in ()).throw(rpc.CallError("GenericError", "no"))),
    })
    assert answer(r, '[2,"a","Boom",{"n":1}]') == [4, "a", "InternalError", "Boom failed", {}]
    assert answer(r, '[2,"b","Bytes",{"n":1}]') == [4, "b", "InternalError", "Bytes failed", {}]
    assert answer(r, '[2,"c","Verdict",{"n":1}]') == [4, "c", "GenericError", "no", {}]
    assert answer(r, '[2,"d","Ok",{"n":1}]') == [3, "d", {"n": 2}]
    assert any("Boom" in m for m in logs) and any("Bytes" in m for m in logs)


@pytest.mark.parametrize("frame, want", [
    ("nonsense", ["-1", "FormationViolation"]),
    ("[" * 100000 + "]" * 100000, ["-1", "FormationViolation"]),  # nesting beyond the stack
    ("{}", ["-1", "FormationViolation"]),
    ("[2]", ["-1", "FormationViolation"]),
    ('[2,7,"Ok",{}]', ["-1", "FormationViolation"]),
    ('[2,"' + "x" * 37 + '","Ok",{}]', ["-1", "FormationViolation"]),
    ('[2,"e"]', ["e", "FormationViolation"]),
    ('[9,"e",{}]', ["e", "FormationViolation"]),
    ('[2,"e","Ok"]', ["e", "FormationViolation"]),
    ('[2,"e","Nope",{}]', ["e", "NotImplemented"]),
    ('[2,"e","Ok",{"n":10}]', ["e", "PropertyConstraintViolation"]),
    ('[2,"e","Ok",{"n":"1"}]', ["e", "TypeConstraintViolation"]),
])
def test_bad_incoming_frames(frame, want):
    r, _ = make({"Ok": (SPEC, lambda p: {})})
    got = answer(r, frame)
    assert got[0] == 4 and got[1:3] == want


def test_call_frame_ids_and_answer_matching():
    sent = []

    class WS:
        def send(self, data):
            sent.append(json.loads(bytes(data)))
            return asyncio.sleep(0)

        async def close(self, code=1000):
            pass

    async def main():
        r, logs = make()
        r.attach(WS())
        task = asyncio.ensure_future(r.call("Heartbeat", {}, 2000))
        await asyncio.sleep(0.01)
        uid = sent[0][1]
        assert sent[0] == [2, uid, "Heartbeat", {}] and len(uid) <= 36
        assert r.handle(b'[3,"other",{}]') is None  # not ours: dropped, logged
        assert r.handle(json.dumps([3, uid, {"currentTime": "x"}]).encode()) is None
        assert await task == {"currentTime": "x"}
        assert r._reply is None and r._on is None and not r._idlen  # nothing of it kept
        task = asyncio.ensure_future(r.call("Heartbeat", {}, 2000))
        await asyncio.sleep(0.01)
        assert sent[1][1] != uid  # a new id per CALL
        r.handle(json.dumps([3, sent[1][1], []]).encode())  # a CALLRESULT must carry an object
        with pytest.raises(rpc.CallError) as ei:
            await task
        assert ei.value.code == "FormationViolation"
        assert any("other" in m for m in logs)

    asyncio.run(main())


class Link:
    """A socket for Rpc.call(): keeps what was sent (as bytes: rpc hands over a view of its
    buffer, valid until the next CALL)."""

    def __init__(self):
        self.sent = []

    def send(self, data):
        self.sent.append(bytes(data.encode() if isinstance(data, str) else data))
        return asyncio.sleep(0)

    async def close(self, code=1000):
        pass


async def calling(r, action, payload, timeout_ms=2000):
    # -> the call's task, once its frame is out, and the frame's id as bytes.
    task = asyncio.ensure_future(r.call(action, payload, timeout_ms))
    await asyncio.sleep(0.01)
    sent = r.ws.sent[-1]
    return task, sent[4 : sent.index(b'"', 4)]


def test_call_frames_are_compact_json_of_every_payload_kind():
    async def main():
        r, _ = make()
        r.attach(Link())

        def writer(b, i):  # a payload that writes its own JSON text
            b[i : i + 7] = b'{"a":1}'
            return i + 7

        big = {"data": "x" * 3000}  # longer than the frame buffer: built apart
        for payload, text in ((b"{}", b"{}"), ({"n": 1}, None), (writer, b'{"a":1}'),
                              (big, None)):
            task, uid = await calling(r, "Act", payload)
            frame = r.ws.sent[-1]
            if text is not None:
                assert frame == b'[2,"' + uid + b'","Act",' + text + b"]"
            assert json.loads(frame) == [2, uid.decode(), "Act", json.loads(text or
                                                                            json.dumps(payload))]
            assert r.handle(b'[3,"' + uid + b'",{}]') is None
            assert await task == {}
        ids = [json.loads(f)[1] for f in r.ws.sent]
        assert len(set(ids)) == len(ids) and all(len(u) <= 36 for u in ids)

    asyncio.run(main())


def test_compact_answers_and_all_the_others_are_matched_alike():
    async def main():
        r, logs = make()
        r.attach(Link())
        for seq in range(1, 13):  # ids -1 .. -12: one is a prefix of another
            task, uid = await calling(r, "Heartbeat", b"{}")
            if seq == 1:
                first = uid
            if seq == 12:  # the id of the 1st CALL is a prefix of ours: not ours
                assert r.handle(b'[3,"' + first + b'",{}]') is None and not task.done()
                assert r.handle(b'[3,"' + uid[:-1] + b'",{}]') is None and not task.done()
            answer = (b'[3,"' + uid + b'",{"currentTime":"2026-01-01T00:00:00Z"}]', b'[3, "' +
                      uid + b'", {}]', b'[3,"' + uid + b'",{} ]',
                      b'[4,"' + uid + b'","NotImplemented","no",{}]')[seq % 4]
            assert r.handle(answer) is None
            if seq % 4 == 3:
                with pytest.raises(rpc.CallError) as ei:
                    await task
                assert ei.value.code == "NotImplemented" and ei.value.description == "no"
            else:
                assert await task == ({"currentTime": "2026-01-01T00:00:00Z"}
                                      if seq % 4 == 0 else {})
        # Malformed after a matching start: the general way says so, the CALL stays unanswered.
        task, uid = await calling(r, "Heartbeat", b"{}", 300)
        out = r.handle(b'[3,"' + uid + b'",{}]]')
        assert json.loads(out)[:3] == [4, "-1", "FormationViolation"]
        out = r.handle(b'[3,"' + uid + b'",{"a":}]')
        assert json.loads(out)[:3] == [4, "-1", "FormationViolation"]
        with pytest.raises(rpc.Timeout):
            await task
        task, uid = await calling(r, "Heartbeat", b"{}")
        assert r.handle(b'[3,"' + uid + b'",5]') is None  # not an object: fails the CALL
        with pytest.raises(rpc.CallError) as ei:
            await task
        assert ei.value.code == "FormationViolation"

    asyncio.run(main())


class SlowSock(FakeSock):
    """A stream whose drain() waits until let() (a long frame stays under way meanwhile)."""

    def __init__(self):
        super().__init__(b"", eof=False)
        self.go = None

    def let(self):
        self.go.set()

    async def drain(self):
        if self.go is not None:
            await self.go.wait()


def test_call_frames_are_written_in_the_websockets_send_buffer():
    # rpc keeps no buffer for its frames: a CALL is written in the WebSocket's send buffer and
    # masked there (behind a header of 6 or 8 bytes); one too long for it, or one made while a
    # long frame is being sent from it, in a buffer of its own. All go out whole and intact.
    async def main():
        fake = SlowSock()
        sock = ws.WebSocket(fake, fake)
        r, _ = make()
        r.attach(sock)
        assert len(r._id) <= 40 and not [v for v in vars(r).values()
                                         if isinstance(v, (bytearray, memoryview))
                                         and len(v) > 40]
        sent = []
        for payload in ({}, {"d": "x" * 100}, {"d": "x" * 200}, {"d": "x" * 990},
                        {"d": "x" * 3000}):
            task = asyncio.ensure_future(r.call("Act", payload, 2000))
            await asyncio.sleep(0.01)
            msg = json.loads(client_frames(fake.out)[-1][2])
            assert msg[2:] == ["Act", payload]
            sent.append(msg[1])
            assert r.handle(('[3,"%s",{}]' % msg[1]).encode()) is None and await task == {}
        assert len(set(sent)) == len(sent)
        # A long frame under way, its drain awaited: the CALL waits for it, in its own buffer.
        fake.go = asyncio.Event()
        long = asyncio.ensure_future(sock.send(b"q" * 3000, text=False))
        await asyncio.sleep(0.01)
        assert sock.body() is None
        task = asyncio.ensure_future(r.call("Act", {"n": 1}, 2000))
        await asyncio.sleep(0.01)
        fake.let()
        await long
        await asyncio.sleep(0.01)
        frames = client_frames(fake.out)
        assert frames[-2][1:3] == (2, b"q" * 3000)
        msg = json.loads(frames[-1][2])
        assert msg[2:] == ["Act", {"n": 1}]
        r.handle(('[3,"%s",{}]' % msg[1]).encode())
        assert await task == {} and sock.body() is not None

    asyncio.run(main())
