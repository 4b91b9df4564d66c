# The contactor and the interlock: the one place that decides whether a connector's contactor may
# close and what the pilot offers. Nothing else in the firmware drives a relay pin.
#
# The contactor closes only when all hold: an authorised transaction, the EV in state C or D, no
# fault, the cable locked (where there is a lock) and the interlock not tripped. It opens as soon
# as any of them fails: on a fault, on unplugging (state A), when the EV goes back to B, when the
# transaction stops, on a reset and, latched until the next start, on any unhandled exception.
# The rule is evaluated from these inputs on every update rather than kept as transitions, so no
# sequence of events can leave the contactor closed when it should be open.
from ocpp.compat import const, ticks_diff, ticks_ms

from .pilot import CHARGING

_SETTLE_MS = const(300)  # a contactor moves within ~50 ms; its auxiliary contact is read later

SWITCH_FAILURE = "PowerSwitchFailure"


class Contactor:
    def __init__(self, pin, active=1, feedback=None, feedback_active=1):
        self._pin = pin
        self._active = active
        self._fb = feedback
        self._fb_active = feedback_active
        self.closed = False
        self._changed = ticks_ms()
        pin.value(1 - active)

    def set(self, closed):
        if closed != self.closed:
            self.closed = closed
            self._pin.value(self._active if closed else 1 - self._active)
            self._changed = ticks_ms()

    def failure(self):
        """PowerSwitchFailure when the auxiliary contact disagrees with the coil once the
        contactor had time to move: a welded contact, or one that does not pull in."""
        fb = self._fb
        if fb is None or ticks_diff(ticks_ms(), self._changed) < _SETTLE_MS:
            return None
        if (fb.value() == self._fb_active) != self.closed:
            return SWITCH_FAILURE
        return None


class Interlock:
    def __init__(self, contactor, pilot, limit_a, lock=None):
        self.contactor = contactor
        self.pilot = pilot
        self.lock = lock
        self.limit_a = limit_a
        self.authorised = False  # an authorised transaction wants energy on this connector
        self.fault = None  # the connector's fault code, if any
        self.tripped = False  # latched by trip(): open until the interlock is rebuilt

    def allowed(self):
        """May current be offered to the EV at all?"""
        lock = self.lock
        return (
            self.authorised
            and not self.fault
            and not self.tripped
            and (lock is None or lock.locked)
        )

    def update(self):
        """Apply the rule; returns whether the contactor is closed."""
        ok = self.allowed()
        close = ok and self.pilot.state in CHARGING
        if not close:
            self.contactor.set(False)  # open before the pilot changes: safety first
        self.pilot.offer(self.limit_a if ok else 0)
        if close:
            self.contactor.set(True)
        return close

    def trip(self):
        """Open now and stay open (a reset, or an unhandled exception)."""
        self.tripped = True
        self.authorised = False
        self.contactor.set(False)
        self.pilot.offer(0)
