# The simulator's console (host board): command lines on stdin drive the simulated hardware, and
# `status` prints one JSON line on stdout. This is the stable contract tools/sim exposes:
#   plug C | unplug C | card C TAG | ev C AMPS | fault C [CODE] | clear C | status | quit
#   mem [reset]: one JSON line {"mem": {"alloc", "free", "peak", "code", "drops", "total",
#   "threshold"}} after a gc.collect() (see mem_report() below; "reset" restarts the peak from
#   the heap in use now).
#   lock C ok|fail|fixed: the connector's cable lock works, fails (never ends where it is sent),
#   or is absent (a fixed cable).
# Logs go to stderr; stdout carries only status and mem lines. plug, unplug, ev and lock act on
# the simulated hardware (firmware/simmachine/simworld.py), which the charger then sees through
# its hardware layer as on a board; card hands the idTag to the charger as a reader would, and
# fault / clear raise and end an external fault input.
import asyncio
import gc
import json
import sys

import memstat
import micropython

# The `mem` figures (read by tools/bench.py) beside memstat.code:
#   peak  - the largest gc.mem_alloc() a 50 ms sampler saw since boot (or the last `mem reset`).
#           Without a collection before each sample it includes garbage: an upper bound of the
#           heap in use, not the live peak. The sampler runs only when asked for: OCPP_MEMSTAT=1
#           in the environment.
#   drops - how often the heap in use shrank between two samples: collections the runtime ran
#           (the `mem` command's own collection is not counted).
#   total - bytes allocated since boot, garbage included (micropython.mem_total(), on ports built
#           with MICROPY_MEM_STATS such as the unix port; None elsewhere): the allocation rate.
#   threshold - gc.threshold(): the allocation after which the runtime collects (main.py).
#   sim   - the heap the simulator's own objects took when made: the simulated world (EVs,
#           contactors, CT clamps, the reader chip: simworld.heap), this console's stdin reader
#           and the sampler. Part of `alloc` minus `code` here, absent on a board.
peak = None  # None: the sampler is off
drops = 0
_last = 0
_heap = 0  # the console's part of "sim"


def sampler_wanted():
    import os

    getenv = getattr(os, "getenv", None)
    return getenv is not None and getenv("OCPP_MEMSTAT") == "1"


async def sampler(period_ms=50):
    # Allocates nothing per round: gc.mem_alloc() is a small int, sleep_ms a singleton.
    global peak, drops, _last
    peak = _last = gc.mem_alloc()
    while True:
        a = gc.mem_alloc()
        if a > peak:
            peak = a
        elif a < _last:
            drops += 1
        _last = a
        await asyncio.sleep_ms(period_ms)


def mem_report(reset=False):
    """Collect, then the figures as a dict; reset=True restarts the peak from here."""
    global peak, _last
    gc.collect()
    a = gc.mem_alloc()
    total = getattr(micropython, "mem_total", None)
    r = {"alloc": a, "free": gc.mem_free(), "peak": peak, "code": memstat.code, "drops": drops,
         "total": total() if total else None, "threshold": gc.threshold(),
         "sim": _heap + getattr(sys.modules.get("simworld"), "heap", 0)}
    _last = a
    if reset and peak is not None:
        peak = a
    return r


def status(charger):
    cp = charger.cp
    conns = []
    for c in cp.connectors[1:]:
        tx = c.tx
        conns.append(
            {
                "id": c.id,
                "status": c.status,
                "transaction": None if tx is None else tx.id,
                "energy_wh": charger.energy_wh(c.id),
            }
        )
    return {
        "connected": cp.connected,
        "accepted": cp.registration == "Accepted",
        "connectors": conns,
        "queued": len(cp.txq),
    }


def _ev(cid):
    from simworld import world

    return world().ev(cid)


def _lock(charger, cid, mode):
    # A fixed cable is a connector without a lock: the board variant, swapped in at run time.
    port = charger.hw.port(cid)
    if not hasattr(port, "sim_lock"):
        port.sim_lock = port.lock
    port.lock = port.interlock.lock = None if mode == "fixed" else port.sim_lock
    _ev(cid).lock_fail = mode == "fail"


def _connector(charger, word):
    cid = int(word)
    if not 1 <= cid < len(charger.cp.connectors):
        raise ValueError("no connector %s" % word)
    return cid


async def command(charger, line):
    """Run one command; returns False on quit. A bad command raises ValueError, changing
    nothing."""
    words = line.split()
    if not words:
        return True
    cmd, args = words[0], words[1:]
    if cmd == "quit":
        return False
    if cmd == "status" and not args:
        sys.stdout.write(json.dumps(status(charger)) + "\n")
        return True
    if cmd == "mem" and args in ([], ["reset"]):
        sys.stdout.write(json.dumps({"mem": mem_report(bool(args))}) + "\n")
        return True
    if cmd in ("plug", "unplug", "clear") and len(args) == 1:
        cid = _connector(charger, args[0])
        if cmd == "clear":
            charger.fault(cid, None)
        else:
            _ev(cid).plugged = cmd == "plug"
        return True
    if cmd == "fault" and len(args) in (1, 2):
        cid = _connector(charger, args[0])
        charger.fault(cid, args[1] if len(args) == 2 else "OtherError")
        return True
    if cmd == "card" and len(args) == 2:
        cid = _connector(charger, args[0])
        if len(args[1]) > 20:
            raise ValueError("an idTag has at most 20 characters")
        asyncio.create_task(charger.card(cid, args[1]))
        return True
    if cmd == "lock" and len(args) == 2 and args[1] in ("ok", "fail", "fixed"):
        _lock(charger, _connector(charger, args[0]), args[1])
        return True
    if cmd == "ev" and len(args) == 2:
        cid = _connector(charger, args[0])
        amps = int(args[1])
        if amps < 0:
            raise ValueError("amps must be >= 0")
        _ev(cid).max_a = amps
        return True
    raise ValueError("unknown command: " + line)


def _made(fn, *args):
    # fn(*args), its heap counted in "sim" (a collection before and after).
    global _heap
    gc.collect()
    a = gc.mem_alloc()
    obj = fn(*args)
    gc.collect()
    _heap += gc.mem_alloc() - a
    return obj


def start_sampler():
    """The heap-peak sampler behind `mem`, when OCPP_MEMSTAT=1 asks for it."""
    if sampler_wanted():
        _made(lambda: asyncio.create_task(sampler()))


async def run(charger, log):
    reader = _made(asyncio.StreamReader, sys.stdin)
    while True:
        line = await reader.readline()
        if not line:  # EOF quits cleanly
            return
        try:
            if not await command(charger, line.decode().strip()):
                return
        except ValueError as e:
            log("error: %s" % e)
