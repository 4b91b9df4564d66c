# Microsecond timing for the sampling loops (pilot bursts, mains cycles). ocpp.compat has the
# millisecond ticks; this adds ticks_us and sleep_us with the same 30-bit wrap-around, so
# compat.ticks_diff and ticks_add work on both. On CPython (the host tests) they are stand-ins.
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
