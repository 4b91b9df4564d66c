# The socket's cable lock: a small DC motor driven one way to lock and the other to unlock (two
# pins into an H-bridge), with an optional switch that reports the locked position. A pulse is a
# few hundred ms; it blocks, which is harmless because the contactor is always open while the lock
# moves (the interlock requires it locked before closing). A move that fails is the charger's
# ConnectorLockFailure.
from .timing import sleep_ms


class Lock:
    def __init__(self, motor_a, motor_b, feedback=None, feedback_active=1, pulse_ms=300):
        self._a = motor_a
        self._b = motor_b
        self._fb = feedback
        self._fb_active = feedback_active
        self._pulse = pulse_ms
        motor_a.value(0)
        motor_b.value(0)
        self.locked = False

    def sensed(self):
        """The locked switch, or what was last commanded when there is none."""
        if self._fb is None:
            return self.locked
        return self._fb.value() == self._fb_active

    def set(self, locked):
        """Drive the motor; True when the lock ended where it was sent."""
        pin = self._a if locked else self._b
        pin.value(1)
        sleep_ms(self._pulse)
        pin.value(0)
        if self._fb is None:
            self.locked = locked
        else:
            self.locked = self.sensed()
        return self.locked == locked
