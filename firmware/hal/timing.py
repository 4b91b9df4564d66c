# Microsecond timing for the sampling loops (pilot bursts, mains cycles). ocpp.compat has the
# millisecond ticks; this adds ticks_us and sleep_us with the same 30-bit wrap-around, so
# compat.ticks_diff and ticks_add work on both. On CPython (the host tests) they are stand-ins.
# And quiet_waits(): asyncio's timed wake-ups without a heap frame each.
import asyncio

from ocpp.compat import MICROPYTHON, ticks_add, ticks_diff  # noqa: F401  (re-exported)

if MICROPYTHON:
    from time import sleep_ms, sleep_us, ticks_us  # noqa: F401
else:
    import time

    def ticks_us():
        return int(time.perf_counter() * 1000000) & 0x3FFFFFFF

    def sleep_us(us):
        time.sleep(us / 1000000)

    def sleep_ms(ms):
        time.sleep(ms / 1000)


def quiet_waits():
    # A task waking from a timed sleep costs MicroPython's asyncio two calls of
    # IOQueue.wait_io_event, whose frame is too large for the C stack (hal/__init__.py): 2 x 144
    # bytes of heap (64-bit). Freed at once, but the hardware loop wakes 20 times a second: 5.8
    # KB/s at idle, counted by gc.threshold (main.py): a collection every second for nothing.
    # This stand-in has a small frame: one poll; when something is ready, the original handles
    # it (poll is level-triggered: it still is). CPython's asyncio (host tests) has no `core`.
    q = getattr(getattr(asyncio, "core", None), "_io_queue", None)
    if q is None or "wait_io_event" in q.__dict__:
        return
    ipoll = q.poller.ipoll
    full = type(q).wait_io_event

    def wait_io_event(dt):
        if next(ipoll(dt), None) is not None:
            full(q, 0)

    q.wait_io_event = wait_io_event
