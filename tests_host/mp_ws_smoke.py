# Run by tests_host/test_ws.py under .venv/bin/micropython with MICROPYPATH=<repo>/lib:.frozen
#   micropython mp_ws_smoke.py PORT [CA_DER_FILE OTHER_CA_DER_FILE]
# Echoes messages through a websockets echo server on 127.0.0.1 (wss://localhost with a CA file)
# and prints OK: proves lib/ocpp/ws.py runs on real MicroPython, not only on CPython.
import asyncio
import sys

from ocpp import ws


async def main():
    port = int(sys.argv[1])
    cadata = None
    if len(sys.argv) > 2:
        with open(sys.argv[2], "rb") as f:
            cadata = f.read()
        url = "wss://localhost:%d/ocpp/CP001" % port
    else:
        url = "ws://127.0.0.1:%d/ocpp/CP001" % port
    sock = await ws.connect(url, basic_auth=("CP001", "pw"), cadata=cadata, max_size=80000)
    for n in (10, 200, 5000, 70000):
        msg = "".join(chr(65 + i % 26) for i in range(n))
        await sock.send(msg)
        is_text, data = await sock.recv()
        assert is_text and len(data) == n and str(data, "utf-8") == msg, n
        raw = bytes(i & 255 for i in range(n))
        await sock.send(raw, text=False)
        is_text, data = await sock.recv()
        assert not is_text and data == raw, n
    await sock.ping(b"p")
    # A recv timed out while no message was arriving leaves the connection usable.
    try:
        await asyncio.wait_for_ms(sock.recv(), 50)
        raise AssertionError("recv without a message returned")
    except asyncio.TimeoutError:
        pass
    await sock.send("again")
    assert str((await sock.recv())[1], "utf-8") == "again"
    # serve(): one coroutine hands every message to the handler (the engine's reader).
    got = []

    def handle(payload):
        got.append(bytes(payload))

    server = asyncio.create_task(sock.serve(handle))
    for n in (10, 3000, 5):
        await sock.send("s" * n)
    for _ in range(200):
        if len(got) == 3:
            break
        await asyncio.sleep_ms(10)
    assert [len(g) for g in got] == [10, 3000, 5], [len(g) for g in got]
    server.cancel()
    try:
        await server
    except asyncio.CancelledError:
        pass
    await sock.send("after serve")
    assert str((await sock.recv())[1], "utf-8") == "after serve"
    # A recv pending in another task must end with WSClosed when we close.
    task = asyncio.create_task(sock.recv())
    await asyncio.sleep_ms(20)
    await sock.close()
    try:
        await asyncio.wait_for_ms(task, 1000)
        raise AssertionError("recv after close returned")
    except ws.WSClosed:
        pass
    assert sock.closed
    if cadata is None:  # refused port -> WSError naming host:port
        try:
            await ws.connect("ws://127.0.0.1:1/", timeout_ms=2000)
            raise AssertionError("connected to port 1")
        except ws.WSError as e:
            assert "127.0.0.1:1" in str(e), str(e)
    else:  # wss without a CA, or with the wrong one, is refused
        try:
            await ws.connect(url)
            raise AssertionError("wss without CA accepted")
        except ws.WSError as e:
            assert "CA certificate" in str(e), str(e)
        with open(sys.argv[3], "rb") as f:
            other = f.read()
        try:
            await ws.connect(url, cadata=other)
            raise AssertionError("server certificate not verified")
        except ws.WSError as e:
            assert "localhost:%d" % port in str(e), str(e)
    print("OK")


asyncio.run(main())
