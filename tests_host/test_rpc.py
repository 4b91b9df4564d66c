"""lib/ocpp/rpc.py on its own: routing of incoming frames, handler failures, the CALL frame and
the matching of answers (the engine-level behaviour is in test_engine.py)."""
import asyncio
import json

import pytest

from ocpp import rpc

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
