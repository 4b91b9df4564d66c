# Heap figures for the simulator's `mem` console command (read by tools/bench.py):
#   code  - gc.mem_alloc() after a collection once every module is imported and before the
#           charger exists (startup.py calls mark()): loaded bytecode, module dicts, interned
#           strings, plus the small settings dict; less what unload() then freed (start-up's
#           own code, the board file's dicts). state = alloc now - code.
#   peak  - the largest gc.mem_alloc() a 50 ms sampler saw since boot (or the last `mem reset`).
#           Without a collection before each sample it includes garbage: an upper bound of the
#           heap in use, not the live peak. The sampler runs only when asked for: OCPP_MEMSTAT=1
#           in the environment (unix port; boards have no os.getenv, so never there).
#   drops - how often the heap in use shrank between two samples: collections the runtime ran
#           (the `mem` command's own collection is not counted).
#   total - bytes allocated since boot, garbage included (micropython.mem_total(), on ports built
#           with MICROPY_MEM_STATS such as the unix port; None elsewhere): the allocation rate.
import gc
import sys

import micropython

code = None
peak = None  # None: the sampler is off
drops = 0
_last = 0


def mark():
    global code
    gc.collect()
    code = gc.mem_alloc()


def forget(name):
    """Drop a module needed once at start-up: with no reference left, its code leaves the
    heap."""
    sys.modules.pop(name, None)
    pkg, _, attr = name.rpartition(".")
    try:
        delattr(sys.modules[pkg], attr)
    except (KeyError, AttributeError):
        pass


def unload(*names):
    """forget() the modules `names` (None: skipped); what that frees was counted as code and is
    gone: the code figure drops by exactly that."""
    global code
    gc.collect()
    a = gc.mem_alloc()
    for name in names:
        if name:
            forget(name)
    gc.collect()
    if code is not None:
        code -= a - gc.mem_alloc()


def wanted():
    import os

    getenv = getattr(os, "getenv", None)
    return getenv is not None and getenv("OCPP_MEMSTAT") == "1"


async def sampler(period_ms=50):
    # Allocates nothing per round: gc.mem_alloc() is a small int, sleep_ms a singleton.
    import asyncio

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


def report(reset=False):
    """Collect, then the figures as a dict; reset=True restarts the peak from here."""
    global peak, _last
    gc.collect()
    a = gc.mem_alloc()
    total = getattr(micropython, "mem_total", None)
    r = {"alloc": a, "free": gc.mem_free(), "peak": peak, "code": code, "drops": drops,
         "total": total() if total else None}
    _last = a
    if reset and peak is not None:
        peak = a
    return r
