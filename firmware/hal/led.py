# The status LED of a connector: a blink pattern per OCPP connector status, stepped by the
# hardware loop (no timer needed). When start-up fails (bad settings or board file) main.py
# blinks it fast from a timer, so the problem shows without a serial cable.
from ocpp.compat import ticks_diff, ticks_ms


def pattern(status):
    """(on ms, off ms) for a ChargePointStatus."""
    if status == "Available":
        return 1, 0  # steady on: ready
    if status == "Charging":
        return 1500, 150
    if status in ("Preparing", "Finishing"):
        return 500, 500
    if status in ("SuspendedEV", "SuspendedEVSE"):
        return 150, 1500
    if status == "Faulted":
        return 100, 100
    return 0, 1  # Unavailable, Reserved, unknown: off


class Led:
    def __init__(self, pin):
        self._pin = pin
        self._on = 0
        self._off = 1
        self._t0 = ticks_ms()
        pin.value(0)

    def show(self, on_ms, off_ms):
        if on_ms != self._on or off_ms != self._off:
            self._on = on_ms
            self._off = off_ms
            self._t0 = ticks_ms()

    def show_status(self, status):
        self.show(*pattern(status))

    def tick(self, now):
        on, off = self._on, self._off
        if off == 0 or on == 0:
            self._pin.value(1 if on else 0)
            return
        self._pin.value(1 if ticks_diff(now, self._t0) % (on + off) < on else 0)

