# The few things that differ between MicroPython and CPython, in one place.
# Everything else in lib/ocpp imports from here instead of testing sys.implementation itself.
import sys

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    import asyncio
    from micropython import const
    from time import ticks_add, ticks_diff, ticks_ms

    sleep_ms = asyncio.sleep_ms
else:  # CPython 3.11: the host tests and the CPython benchmark
    import asyncio
    import time

    def const(x):
        return x

    def ticks_ms():
        return int(time.monotonic() * 1000) & 0x3FFFFFFF

    def ticks_add(t, delta):
        return (t + delta) & 0x3FFFFFFF

    def ticks_diff(a, b):
        # Same wrap-around arithmetic as MicroPython's 30-bit ticks.
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d & 0x20000000 else d

    def sleep_ms(ms):
        return asyncio.sleep(ms / 1000)


async def wait_for_ms(aw, ms):
    # asyncio.wait_for_ms exists only on MicroPython; CPython takes seconds.
    if MICROPYTHON:
        return await asyncio.wait_for_ms(aw, ms)
    return await asyncio.wait_for(aw, ms / 1000)


def collect():
    import gc

    gc.collect()
