"""Tests of tools/csms.py itself (and of harness.Csms), with a plain websockets
client playing the charge point. No firmware needed. Never imports PyPI ocpp."""
import asyncio
import base64
import json
import subprocess
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness import CSMS_PY, PYTHON, REPO, CallFailed, Csms

BOOT = {"chargePointVendor": "Acme", "chargePointModel": "M1"}
KEY = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"


@pytest.fixture(scope="module")
def csms():
    with Csms() as c:
        yield c


def cp_connect(csms, cp="T1", subprotocols=("ocpp1.6",), **kw):
    return connect(f"{csms.url}/{cp}", subprotocols=list(subprotocols) if subprotocols else None,
                   open_timeout=3, **kw)


async def rpc(ws, frame, timeout=3):
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_boot_notification_accepted_and_logged(csms):
    async def go():
        async with cp_connect(csms) as ws:
            return await rpc(ws, [2, "b1", "BootNotification", BOOT])

    since = csms.mark()
    res = run(go())
    assert res[:2] == [3, "b1"]
    assert res[2]["status"] == "Accepted" and res[2]["interval"] == 300
    assert res[2]["currentTime"].endswith("Z")
    assert abs(time.mktime(time.strptime(res[2]["currentTime"][:19], "%Y-%m-%dT%H:%M:%S"))
               - time.mktime(time.gmtime())) < 5
    # JSON log: connected, rx frame as parsed JSON, tx frame, disconnected
    connected = csms.wait_for(lambda l: l.get("event") == "connected", since=since)
    assert connected["cp"] == "T1" and connected["subprotocol"] == "ocpp1.6"
    rx = csms.wait_for(lambda l: l.get("dir") == "rx" and l["msg"][1] == "b1", since=since)
    assert rx["cp"] == "T1" and rx["msg"] == [2, "b1", "BootNotification", BOOT]
    tx = csms.wait_for(lambda l: l.get("dir") == "tx" and l["msg"][1] == "b1", since=since)
    assert tx["cp"] == "T1" and tx["msg"] == res and isinstance(tx["t"], float)
    csms.wait_for(lambda l: l.get("event") == "disconnected" and l["cp"] == "T1", since=since)


def test_invalid_calls_get_callerror(csms):
    cases = [
        ([2, "e1", "BootNotification", {"chargePointVendor": "Acme"}], "ProtocolError"),  # missing field
        ([2, "e2", "BootNotification", {**BOOT, "chargePointModel": 5}], "TypeConstraintViolation"),
        ([2, "e3", "Heartbeat", {"extra": 1}], "FormatViolation"),  # additionalProperties
        ([2, "e4", "BootNotification", {**BOOT, "chargePointModel": "x" * 21}], "TypeConstraintViolation"),
        ([2, "e5", "NoSuchAction", {}], "NotSupported"),
        ([2, "e6", "Reset", {"type": "Soft"}], "NotImplemented"),  # a central-system-to-CP action
    ]

    async def go():
        async with cp_connect(csms) as ws:
            return [await rpc(ws, frame) for frame, _ in cases]

    for (frame, code), res in zip(cases, run(go())):
        assert res[0] == 4 and res[1] == frame[1] and res[2] == code, res


def test_transaction_ids_and_tag_status():
    start = {"connectorId": 1, "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z"}
    with Csms("--reject-tags", "BAD,WORSE", "--tag-status", "BLK=Blocked", "--heartbeat-interval", "60") as c:
        async def go():
            async with cp_connect(c) as ws:
                boot = await rpc(ws, [2, "1", "BootNotification", BOOT])
                # meterStart differs: an identical StartTransaction is a resend and gets the
                # same transactionId back (test_offline.py checks that).
                tx = [await rpc(ws, [2, f"s{i}", "StartTransaction",
                                     {**start, "idTag": tag, "meterStart": i}])
                      for i, tag in enumerate(["OK", "BAD", "BLK", "OK"])]
                auth = [await rpc(ws, [2, f"a{t}", "Authorize", {"idTag": t}]) for t in ("OK", "WORSE", "BLK")]
                return boot, tx, auth

        boot, tx, auth = run(go())
        assert boot[2]["interval"] == 60
        # wait_rx keeps a cursor per action: successive calls, successive frames
        assert [c.wait_rx("StartTransaction")[1] for _ in range(4)] == ["s0", "s1", "s2", "s3"]
        assert [m[1] for m in c.rx_calls("Authorize")] == ["aOK", "aWORSE", "aBLK"]
        with pytest.raises(AssertionError, match="no matching line"):
            c.wait_rx("StartTransaction", timeout=0.2)
        assert [r[2]["transactionId"] for r in tx] == [1, 2, 3, 4]
        assert [r[2]["idTagInfo"]["status"] for r in tx] == ["Accepted", "Invalid", "Blocked", "Accepted"]
        assert [r[2]["idTagInfo"]["status"] for r in auth] == ["Accepted", "Invalid", "Blocked"]
        c.set(tag_status={"OK": "Expired"}, next_transaction_id=100)

        async def again():
            async with cp_connect(c, "T2") as ws:
                return await rpc(ws, [2, "s", "StartTransaction", {**start, "idTag": "OK"}])

        res = run(again())
        assert res[2] == {"transactionId": 100, "idTagInfo": {"status": "Expired"}}


def test_other_charge_point_messages(csms):
    ts = "2024-01-01T00:00:00Z"
    frames = {
        "Heartbeat": {},
        "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        "MeterValues": {"connectorId": 1, "meterValue": [{"timestamp": ts, "sampledValue": [{"value": "1"}]}]},
        "DataTransfer": {"vendorId": "acme", "messageId": "x", "data": "y"},
        "FirmwareStatusNotification": {"status": "Idle"},
        "DiagnosticsStatusNotification": {"status": "Idle"},
        "StopTransaction": {"transactionId": 1, "meterStop": 10, "timestamp": ts, "idTag": "OK"},
    }

    async def go():
        async with cp_connect(csms) as ws:
            out = {a: (await rpc(ws, [2, a, a, p]))[2] for a, p in frames.items()}
            del frames["StopTransaction"]["idTag"]
            out["StopNoTag"] = (await rpc(ws, [2, "x", "StopTransaction", frames["StopTransaction"]]))[2]
            return out

    res = run(go())
    assert set(res["Heartbeat"]) == {"currentTime"}
    assert res["DataTransfer"] == {"status": "Accepted"}
    assert res["StopTransaction"] == {"idTagInfo": {"status": "Accepted"}}
    for action in ("StatusNotification", "MeterValues", "FirmwareStatusNotification",
                   "DiagnosticsStatusNotification", "StopNoTag"):
        assert res[action] == {}, action
    csms.set(vendor_ids=["known"])
    try:
        async def dt():
            async with cp_connect(csms) as ws:
                return await rpc(ws, [2, "d", "DataTransfer", {"vendorId": "other"}])

        assert run(dt())[2] == {"status": "UnknownVendorId"}
    finally:
        csms.set(vendor_ids=None)


def test_call_from_central_system(csms):
    async def go():
        async with cp_connect(csms, "T3") as ws:
            await rpc(ws, [2, "b", "BootNotification", BOOT])
            results = []

            async def answer(reply):  # run csms.call in a thread, answer it here
                job = asyncio.create_task(asyncio.to_thread(
                    csms.call_event, "T3", "RemoteStartTransaction", {"idTag": "X", "connectorId": 1}, 2))
                req = json.loads(await asyncio.wait_for(ws.recv(), 3))
                assert req[0] == 2 and req[2:] == ["RemoteStartTransaction", {"idTag": "X", "connectorId": 1}]
                if reply is not None:
                    await ws.send(json.dumps(reply(req[1])))
                results.append(await job)

            await answer(lambda uid: [3, uid, {"status": "Accepted"}])
            await answer(lambda uid: [4, uid, "NotSupported", "nope", {}])
            await answer(lambda uid: [3, uid, {"status": "Maybe"}])  # schema-invalid response
            await answer(None)  # no answer: timeout after 2 s
            # a late answer / unknown id is logged as unmatched, session continues
            await ws.send(json.dumps([3, "late", {"status": "Accepted"}]))
            hb = await rpc(ws, [2, "h", "Heartbeat", {}])
            return results, hb

    since = csms.mark()
    (ok, err, bad, timeout), hb = run(go())
    assert ok["response"] == {"status": "Accepted"} and "error" not in ok
    assert ok["action"] == "RemoteStartTransaction" and ok["cp"] == "T3"
    assert err["error"]["code"] == "NotSupported" and err["error"]["description"] == "nope"
    assert bad["response"] == {"status": "Maybe"} and "schema" in bad["error"]["description"]
    assert timeout["error"]["code"] == "Timeout"
    assert hb[:2] == [3, "h"]
    assert csms.wait_for(lambda l: l.get("event") == "unmatched", since=since)["unique_id"] == "late"
    # the response is logged as an rx frame too
    assert any(l.get("dir") == "rx" and l["msg"][:1] == [3] and l["msg"][2] == {"status": "Accepted"}
               for l in csms.lines[since:])
    with pytest.raises(AssertionError, match="not connected"):
        csms.call("NOPE", "Reset", {"type": "Soft"})
    with pytest.raises(AssertionError, match="not connected"):
        csms.raw("NOPE", "x")


def test_call_helpers_raise_and_validate(csms):
    async def go():
        async with cp_connect(csms, "T4") as ws:
            async def reply():
                req = json.loads(await asyncio.wait_for(ws.recv(), 3))
                await ws.send(json.dumps([4, req[1], "InternalError", "boom", {}]))

            task = asyncio.create_task(reply())
            with pytest.raises(CallFailed) as exc:
                await asyncio.to_thread(csms.call, "T4", "Reset", {"type": "Soft"})
            await task
            # schema-invalid request: refused before sending (validate=True)
            ev = await asyncio.to_thread(csms.call_event, "T4", "Reset", {"type": "Warm"})
            # ...but sent as-is with validate=False
            job = asyncio.create_task(asyncio.to_thread(csms.call_event, "T4", "Reset", {"type": "Warm"}, 3, False))
            req = json.loads(await asyncio.wait_for(ws.recv(), 3))
            await ws.send(json.dumps([3, req[1], {"status": "Rejected"}]))
            return exc.value, ev, req, await job

    exc, ev, req, unvalidated = run(go())
    assert exc.event["error"]["code"] == "InternalError"
    assert ev["error"]["code"] == "FormatViolation" and "not sent" in ev["error"]["description"]
    assert req[2:] == ["Reset", {"type": "Warm"}]
    assert unvalidated["response"] == {"status": "Rejected"} and "error" not in unvalidated


def test_raw_frames_and_garbage(csms):
    async def go():
        async with cp_connect(csms, "T5") as ws:
            await asyncio.to_thread(csms.raw, "T5", "this is not json")
            got = [await asyncio.wait_for(ws.recv(), 3)]
            await asyncio.to_thread(csms.raw, "T5", '[2,"r1","NoSuchAction",{}]')
            got.append(await asyncio.wait_for(ws.recv(), 3))
            await ws.send(json.dumps([3, "r1", {}]))  # our answer: unmatched, no crash
            for junk in ("garbage", "{}", "[]", "[7,\"x\"]", '[2,"q",["list"],{}]', '[2,"q2","Heartbeat"]'):
                await ws.send(junk)
            hb = await rpc(ws, [2, "h", "Heartbeat", {}])
            return got, hb

    since = csms.mark()
    got, hb = run(go())
    assert got == ["this is not json", '[2,"r1","NoSuchAction",{}]']
    assert hb[:2] == [3, "h"]
    tx = [l["msg"] for l in csms.lines[since:] if l.get("dir") == "tx" and l["cp"] == "T5"]
    assert tx[0] == "this is not json"  # non-JSON frames are logged as the raw string
    assert [3, "r1", {}] in [l["msg"] for l in csms.lines[since:] if l.get("dir") == "rx"]
    assert csms.events("unmatched", since)[0]["unique_id"] == "r1"
    assert any("garbage" in e["text"] for e in csms.events("ocpp-log", since))


def test_runtime_settings_ignore_fail_pending(csms):
    csms.set(boot_status="Pending", boot_interval=7, ignore=["Heartbeat"], fail={"Authorize": "InternalError"})
    try:
        async def go():
            async with cp_connect(csms, "T6") as ws:
                boot = await rpc(ws, [2, "b", "BootNotification", BOOT])
                auth = await rpc(ws, [2, "a", "Authorize", {"idTag": "X"}])
                await ws.send(json.dumps([2, "h", "Heartbeat", {}]))
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.3)
                return boot, auth

        boot, auth = run(go())
        assert boot[2]["status"] == "Pending" and boot[2]["interval"] == 7
        assert auth[:3] == [4, "a", "InternalError"]
        assert csms.events("ignored")[-1]["action"] == "Heartbeat"
        with pytest.raises(AssertionError, match="unknown setting"):
            csms.set(no_such_setting=1)
    finally:
        csms.set(boot_status="Accepted", boot_interval=None, ignore=[], fail={})


def test_disconnect_command(csms):
    async def go():
        async with cp_connect(csms, "T7") as ws:
            await rpc(ws, [2, "b", "BootNotification", BOOT])
            await asyncio.to_thread(csms.disconnect, "T7")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
            return ws.close_code

    assert run(go()) == 1001
    assert csms.events("disconnected")[-1]["cp"] == "T7"


@pytest.mark.parametrize("subprotocols", [None, ["ocpp2.0.1"]])
def test_subprotocol_required(csms, subprotocols):
    async def go():
        async with cp_connect(csms, "T8", subprotocols=subprotocols):
            pass

    since = csms.mark()
    with pytest.raises(InvalidStatus) as exc:
        run(go())
    assert exc.value.response.status_code == 400
    assert csms.wait_for(lambda l: l.get("event") == "rejected", since=since)["status"] == 400


def test_basic_auth():
    def header(user, password):
        return {"Authorization": "Basic " + base64.b64encode(user.encode() + b":" + password).decode()}

    async def attempt(c, cp, headers):
        try:
            async with cp_connect(c, cp, additional_headers=headers) as ws:
                return (await rpc(ws, [2, "1", "Heartbeat", {}]))[0]
        except InvalidStatus as e:
            return e.response.status_code

    with Csms("--password", KEY) as c:
        assert run(attempt(c, "AL1000", header("AL1000", KEY.encode()))) == 3  # key as a string
        assert run(attempt(c, "AL1000", header("AL1000", bytes.fromhex(KEY)))) == 3  # raw 20 bytes
        assert run(attempt(c, "AL1000", header("AL1000", b"wrong"))) == 401
        assert run(attempt(c, "AL1000", header("OTHER", KEY.encode()))) == 401  # user must be the id
        assert run(attempt(c, "AL1000", {})) == 401
        assert c.events("rejected")[-1]["status"] == 401


def test_restart_keeps_port():
    start = {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z"}
    with Csms() as c:
        port = c.port

        async def session():
            async with cp_connect(c) as ws:
                return (await rpc(ws, [2, "s", "StartTransaction", start]))[2]["transactionId"]

        async def restart_under_client(kill):
            async with cp_connect(c) as ws:
                await rpc(ws, [2, "b", "BootNotification", BOOT])
                await asyncio.to_thread(c.restart, kill)
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                return ws.close_code

        assert run(session()) == 1
        assert run(restart_under_client(False)) == 1001  # SIGTERM: graceful close
        assert c.port == port
        assert run(session()) == 1  # counter is per process lifetime
        assert run(restart_under_client(True)) in (None, 1006)  # SIGKILL: connection drops
        assert c.port == port and run(session()) == 1
        assert len(c.events("listening")) == 3


def test_bad_stdin_lines_do_not_crash(csms):
    since = csms.mark()
    csms.proc.stdin.write("not json\n[1,2]\n{\"cmd\":\"explode\",\"ref\":\"z\"}\n")
    csms.proc.stdin.flush()
    errs = [csms.wait_for(lambda l: l.get("event") == "error", since=since)]
    errs.append(csms.wait_for(lambda l: l.get("id") == "z", since=since))
    assert "unknown cmd" in errs[-1]["error"]
    assert csms.set()["boot_status"] == "Accepted"  # still alive and answering


def test_human_mode():
    proc = subprocess.Popen([PYTHON, str(CSMS_PY), "--port", "0"], cwd=REPO, text=True, bufsize=1,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        first = proc.stdout.readline()
        assert "listening" in first
        port = int(first.split("port=")[1].split()[0])

        async def go():
            async with connect(f"ws://127.0.0.1:{port}/H1", subprotocols=["ocpp1.6"]) as ws:
                await rpc(ws, [2, "b", "BootNotification", BOOT])
                proc.stdin.write("remote-start H1 TAG7 2\n")
                proc.stdin.flush()
                req = json.loads(await asyncio.wait_for(ws.recv(), 3))
                await ws.send(json.dumps([3, req[1], {"status": "Accepted"}]))
                proc.stdin.write("reset H1 hard\n")
                proc.stdin.flush()
                req2 = json.loads(await asyncio.wait_for(ws.recv(), 3))
                await ws.send(json.dumps([3, req2[1], {"status": "Accepted"}]))
                return req, req2

        req, req2 = run(go())
        assert req[2:] == ["RemoteStartTransaction", {"idTag": "TAG7", "connectorId": 2}]
        assert req2[2:] == ["Reset", {"type": "Hard"}]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=5)[0]
    assert " H1 -> BootNotification {" in out
    assert " H1 <- BootNotification.conf {" in out
    assert " H1 -> RemoteStartTransaction.conf {\"status\":\"Accepted\"}" in out
    assert "result" in out and "stopped" in out
