"""The benchmark instrument itself (`make bench`), so that it cannot rot: tools/bench_mp.py runs
on the MicroPython unix port in its quick mode and prints well-formed positive figures, the
table renders from them, the import order is dependency-first, and the simulator's `mem`
console command answers. Timings and memory are never asserted against targets here."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from harness import REPO, Sim

sys.path.insert(0, str(REPO / "tools"))
import bench  # noqa: E402
import bench_report  # noqa: E402

MP = REPO / ".venv" / "bin" / "micropython"
pytestmark = pytest.mark.skipif(not MP.exists(), reason="no .venv/bin/micropython")


def positive(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0


@pytest.fixture(scope="module")
def quick():
    if not (REPO / "build" / "lib" / "ocpp" / "api.mpy").exists():
        pytest.skip("build/ missing: `make test` compiles it (make mpy)")
    with tempfile.TemporaryDirectory() as cwd:
        p = subprocess.run([str(MP), str(REPO / "tools" / "bench_mp.py"), "quick"], cwd=cwd,
                           env=dict(os.environ, MICROPYPATH=bench.mp_path()),
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res, info = bench.parse_mp(p.stdout)  # one result per kind: the last alloc line is kept
    res["allocs"] = [json.loads(ln[6:])["alloc"] for ln in p.stdout.splitlines()
                     if ln.startswith('BENCH {"alloc"')]
    return res, info


def test_quick_mode_prints_positive_figures(quick):
    res, info = quick
    assert res["runtime"]["word_bytes"] in (4, 8) and res["runtime"]["gc_block"] in (16, 32)
    imp = res["imports"]
    assert positive(imp["base"])
    assert [m[0] for m in imp["modules"]] == ["ocpp.compat", "ocpp.api"]
    assert all(positive(m[1]) and m[2] is None for m in imp["modules"])
    assert sorted(a["mode"] for a in res["allocs"]) == ["rpc", "stack"]
    for a in res["allocs"]:
        per = a["per_message"]
        assert a["k"] == 5
        for key in ("Heartbeat", "MeterValues", "GetConfiguration", "outbox idle round",
                    "GetConfiguration answer bytes", "MeterValues meterValue bytes"):
            assert positive(per[key]), (key, per)
        if a["mode"] == "stack":
            assert positive(per["GetConfiguration (via stream)"]) and positive(per["idle B/s"])
    soak = res["soak"]
    assert soak["n"] == 30 and soak["calls"] == 20 and soak["answers"] == 10
    assert positive(soak["start"]) and positive(soak["end"]) and isinstance(soak["growth"], int)
    assert soak["queued"] == 0
    for label in ("soak-start", "soak-end"):
        assert positive(info[label]["max_free_blocks"]) and positive(info[label]["used"])
    cpu = res["cpu"]
    for kind in ("Heartbeat", "MeterValues"):
        v = cpu["round_trip"][kind]
        assert all(positive(v[k]) for k in ("us", "floor_us", "peer_us", "ratio", "call_bytes"))
    ses = res["session"]  # the standard session, shortened: it completed, so all stages are in
    for key in ("code", "idle", "after transactions", "after SendLocalList",
                "after GetConfiguration", "GetConfiguration answer bytes"):
        assert positive(ses[key]), (key, ses)


def test_report_renders(quick):
    res, info = quick
    r = {"knobs": {"SOAK": 30}, "runtime": res["runtime"],
         "alloc": {a["mode"]: a for a in res["allocs"]},
         "soak": dict(res["soak"], heap_kb=256, inproc_min_heap_kb=200, meminfo=info),
         "cpu_mp": {"nogc": res["cpu"]}, "git": {"commit": "x", "changed_files": 0},
         "engine_session": dict(res["session"], min_heap_kb=200, tx=2, mv=3, hb=3,
                                local_list=10)}
    text = bench_report.render(r)
    assert "Allocation per message" in text and "Soak" in text and "CPU on MicroPython" in text
    assert "engine alone (lib/ocpp, in-process" in text and "200k" in text


def test_import_order_is_dependency_first():
    mods = bench.modules()
    order = bench.import_order(mods)
    lib = [n for n, _, g in mods if g == "lib"]
    assert set(lib) <= set(order) and "main" not in order
    assert order.index("ocpp.compat") < order.index("ocpp.rpc") < order.index("ocpp.api")
    assert order.index("ocpp.api") < order.index("charger")


def test_sim_mem_command(tmp_path):
    # No central system needed: the firmware keeps retrying the connection meanwhile.
    with Sim("ws://127.0.0.1:1", "MEM1", workdir=tmp_path, extra_args=["--mpy"],
             env={"OCPP_MEMSTAT": "1"}) as sim:
        sim.status()  # the console is up
        sim.send("mem")
        for _ in range(50):
            raw = sim._q.get(timeout=10)
            assert raw is not None, sim.stderr_text()[-2000:]
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict) and "mem" in obj:
                break
        m = obj["mem"]
        assert all(positive(m[k]) for k in ("alloc", "free", "code", "peak", "total")), m
        assert m["alloc"] > m["code"] and isinstance(m["drops"], int)
        assert 0 < m["sim"] < m["alloc"] - m["code"], m  # the simulated world is state
