# The few things that differ between MicroPython and CPython, in one place (and jitter(), which
# the engine and the firmware share). Everything else in lib/ocpp imports from here instead of
# testing sys.implementation itself.
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


def jitter(ms):
    # ms +-25 %: a retry delay, so that a fleet of chargers does not retry in lockstep after an
    # outage (the engine's reconnects, the firmware's Wi-Fi joins).
    import os

    return ms * 3 // 4 + (int.from_bytes(os.urandom(2), "big") * ms // 2) // 65536


async def wait_for_ms(aw, ms):
    # asyncio.wait_for_ms exists only on MicroPython; CPython takes seconds.
    if MICROPYTHON:
        return await asyncio.wait_for_ms(aw, ms)
    return await asyncio.wait_for(aw, ms / 1000)


# A sleep that another task can cut short. asyncio.wait_for on an Event costs a task and a
# runner coroutine per wait (about 1.2 KB on the 64-bit unix port), and the engine waits like
# that for every CALL answer and every idle round of its outbox. On MicroPython the sleeping
# task is simply moved to the front of the scheduler's queue (what Task.cancel does, without
# throwing into it). wait() is a plain function returning asyncio's own sleep object, so a wait
# allocates nothing; in exchange the waiting task must call done() when the wait is over, also
# when it ends by an exception (a finally), so that wake() never touches a task that has moved
# on. Usage:  try: await w.wait(ms) ... finally: w.done()
if MICROPYTHON:
    from asyncio import core as _core

    class Waker:
        def __init__(self):
            self._task = None  # the task asleep in wait(), only while it is asleep
            self._flag = False

        def wait(self, ms):
            """Sleep up to ms; at once if wake() was called since the last done()."""
            if self._flag:
                ms = 0
            else:
                self._task = _core.cur_task
            return _core.sleep_ms(ms)

        def done(self):
            """The wait is over -> True if wake() was called."""
            self._task = None
            woken = self._flag
            self._flag = False
            return woken

        def wake(self):
            self._flag = True
            t = self._task
            if t is not None:
                self._task = None
                q = _core._task_queue
                q.remove(t)
                q.push(t)

else:
    # CPython: a future the waker settles, and a timer that settles it otherwise. (asyncio.
    # wait_for on an Event made a task and three more rounds of the event loop per wait: about
    # a third of the client's CPU per CALL in tools/bench_cpy.py.)

    def _settle(f):
        if not f.done():
            f.set_result(None)

    class Waker:
        def __init__(self):
            self._fut = None  # what the task asleep in wait() awaits, only while it is asleep
            self._flag = False

        async def wait(self, ms):
            if self._flag:
                await asyncio.sleep(0)  # yields all the same, as on MicroPython
                return
            loop = asyncio.get_running_loop()
            f = self._fut = loop.create_future()
            h = loop.call_later(ms / 1000, _settle, f)
            try:
                await f
            finally:
                h.cancel()
                self._fut = None

        def done(self):
            woken = self._flag
            self._flag = False
            return woken

        def wake(self):
            self._flag = True
            if self._fut is not None:
                _settle(self._fut)
