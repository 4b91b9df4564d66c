"""CPython throughput for tools/bench.py: N Heartbeats sent back to back (each waits for its
answer) to tools/csms.py over loopback, by one of two clients:
  ours          our library (lib/ocpp) on CPython: cp.heartbeat() through its engine and ws.py
  mobilityhouse mobilityhouse ocpp's own v16 ChargePoint on the `websockets` client:
                await cp.call(call.Heartbeat())
Both packages are named `ocpp`, so each client runs in a process of its own:
  .venv/bin/python tools/bench_cpy.py ours|mobilityhouse URL N
One JSON line on stdout: client, n, wall_s, cpu_s (this process only), calls_per_s,
cpu_us_per_call, and its user/sys split (10 ms ticks). 20 calls warm up first and are not counted.
On the shared 2-core bench VM these figures vary by +-30 % from run to run: compare medians of
several runs, alternating the clients, or count instructions (valgrind --tool=callgrind, the
difference of two runs of different n): our client 242k per call, mobilityhouse's 937k."""
import asyncio
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARM = 20


def _result(client, n, wall, cpu, t0):
    t = os.times()
    return {"client": client, "n": n, "wall_s": wall, "cpu_s": cpu, "calls_per_s": n / wall,
            "cpu_us_per_call": cpu * 1e6 / n, "user_us_per_call": (t[0] - t0[0]) * 1e6 / n,
            "sys_us_per_call": (t[1] - t0[1]) * 1e6 / n}


async def ours(url, n):
    sys.path.insert(0, os.path.join(REPO, "lib"))
    for name in [m for m in sys.modules if m == "ocpp" or m.startswith("ocpp.")]:
        del sys.modules[name]
    from ocpp import api, store

    store.dir = tempfile.mkdtemp(prefix="bench-cpy-")
    cp = api.init({"vendor": "Bench", "model": "cpython", "connectors": 1},
                  {"url": url, "cp_id": "OURS"}, lambda reason, cid, value: None,
                  log=lambda msg: None)
    assert os.path.dirname(api.__file__).startswith(os.path.join(REPO, "lib")), api.__file__
    cp.start()
    deadline = time.monotonic() + 20
    while not (cp.connected and cp.registration == "Accepted"):
        if time.monotonic() > deadline:
            raise SystemExit("ours: no accepted BootNotification within 20 s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)  # the StatusNotifications after boot go out first
    for _ in range(WARM):
        await cp.heartbeat()
    t, c, t0 = time.perf_counter(), time.process_time(), os.times()
    for _ in range(n):
        await cp.heartbeat()
    r = _result("ours", n, time.perf_counter() - t, time.process_time() - c, t0)
    await cp.stop()
    return r


async def mobilityhouse(url, n):
    import websockets
    from ocpp.v16 import ChargePoint, call

    async with websockets.connect(url + "/MH", subprotocols=["ocpp1.6"]) as ws:
        cp = ChargePoint("MH", ws)
        task = asyncio.create_task(cp.start())
        await cp.call(call.BootNotification(charge_point_model="cpython",
                                            charge_point_vendor="Bench"))
        for _ in range(WARM):
            await cp.call(call.Heartbeat())
        t, c, t0 = time.perf_counter(), time.process_time(), os.times()
        for _ in range(n):
            await cp.call(call.Heartbeat())
        r = _result("mobilityhouse", n, time.perf_counter() - t, time.process_time() - c, t0)
        task.cancel()
    return r


def main():
    client, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fn = {"ours": ours, "mobilityhouse": mobilityhouse}[client]
    print(json.dumps(asyncio.run(fn(url, n))), flush=True)


if __name__ == "__main__":
    main()
