# The IEC 61851-1 control pilot: a 1 kHz +-12 V square wave whose duty cycle tells the EV how much
# current it may draw, and whose high level, loaded by the EV's resistors, tells the charger the
# EV's state: A 12 V (no EV), B 9 V (plugged), C 6 V (charging), D 3 V (charging, ventilation),
# E 0 V (short / no power), F -12 V (EVSE error). The low level must stay at -12 V: the EV's
# diode keeps its resistors out of it, and a missing diode is an error (reported as E).
#
# MicroPython cannot start an ADC conversion at a PWM edge, so a burst of readings spread over more
# than one PWM period is taken and split at the midpoint between its highest and lowest reading:
# the mean of the upper group is the high-phase level, that of the lower group the low level. The
# state changes only after it was seen in _DEBOUNCE polls in a row, and classify() adds hysteresis
# around each threshold, so noise at a boundary cannot make it flicker.
from array import array

from ocpp.compat import const

from .timing import ticks_add, ticks_diff, ticks_us

STATES = ("A", "B", "C", "D", "E", "F")
CHARGING = ("C", "D")
PLUGGED = ("B", "C", "D")
_FREQ = const(1000)  # Hz, +-1 % by the standard
_FULL = const(65535)  # duty_u16 of a steady +12 V: no current offered (states A1/B1)
_N = const(48)  # readings per burst
_SPACING_US = const(25)  # _N readings at least this far apart span 1.2 PWM periods
_MIN_GROUP = const(2)  # a group of fewer readings is a spike, not a phase of the wave
_FLAT_MV = const(2000)  # a burst spanning less than this is a steady level (no PWM, or E)
_HYST_MV = const(400)
_DIODE_MV = const(-10500)  # the low phase must be below this (about -12 V)
_DEBOUNCE = const(2)
# Thresholds between A|B, B|C, C|D, D|E and E|F in millivolts: the midpoints of the standard's
# nominal levels. Anything between -10.5 V and +1.5 V is E (0 V, or nonsense: an error either way).
_BOUNDS = (10500, 7500, 4500, 1500, -10500)


def duty_for(amps):
    """duty_u16 for an offered current (IEC 61851-1 Table A.7): 6..51 A -> amps / 0.6 %,
    51..80 A -> amps / 2.5 + 64 %; below 6 A nothing may be drawn: a steady +12 V."""
    if amps < 6:
        return _FULL
    if amps > 80:
        amps = 80
    if amps <= 51:
        return (amps * 65535 + 30) // 60  # amps / 0.6 percent of 65535, rounded
    return ((amps * 4 + 640) * 65535 + 500) // 1000


def classify(mv, prev=None):
    """The state for a high-phase level in millivolts. A level must cross a threshold by
    _HYST_MV to leave the previous state `prev`."""
    p = -1
    if prev is not None:
        for i in range(6):
            if STATES[i] == prev:
                p = i
    for i in range(5):
        b = _BOUNDS[i]
        if p == i:
            b -= _HYST_MV  # leaving state i downwards takes a lower level
        elif p == i + 1:
            b += _HYST_MV  # leaving state i+1 upwards takes a higher level
        if mv >= b:
            return STATES[i]
    return "F"


# The burst is processed by small functions returning one int each, over several passes (max,
# min and sum are the builtins'), no tuple: a poll runs 20 times a second per connector, and a
# MicroPython function whose locals and stack exceed 11 words gets its frame from the heap at
# every call (hal/__init__.py).
def _sum_above(buf, split):
    s = 0
    for v in buf:
        if v > split:
            s += v
    return s


def _count_above(buf, split):
    k = 0
    for v in buf:
        if v > split:
            k += 1
    return k


def high_level(buf, flat):
    """The high-phase level of a burst (every reading of buf), as a mean raw reading: of the
    upper group when the burst spans at least `flat`, else of the whole burst (one steady
    level). No allocation."""
    if max(buf) - min(buf) < flat:
        return sum(buf) // len(buf)
    split = (max(buf) + min(buf)) >> 1
    k = _count_above(buf, split)
    if k < _MIN_GROUP:  # a spike above a steady level
        return (sum(buf) - _sum_above(buf, split)) // (len(buf) - k)
    return _sum_above(buf, split) // k


def low_level(buf, flat):
    """The low-phase level of a burst (mean raw reading of the lower group), or -1 when the
    burst is one steady level: it spans less than `flat`, or a group is a mere spike."""
    if max(buf) - min(buf) < flat:
        return -1
    split = (max(buf) + min(buf)) >> 1
    k = _count_above(buf, split)
    if k < _MIN_GROUP or len(buf) - k < _MIN_GROUP:
        return -1
    return (sum(buf) - _sum_above(buf, split)) // (len(buf) - k)


class Pilot:
    def __init__(self, pwm, adc, cal, invert=False):
        self.pwm = pwm
        self.adc = adc
        self._lo = cal[0]  # read_u16 at -12 V
        self._span = cal[1] - cal[0]  # read_u16 steps for 24 V
        self._flat = _FLAT_MV * self._span // 24000
        self._invert = invert
        self._buf = array("H", bytes(2 * _N))
        self.offered = 0  # amps offered by the PWM; 0 = steady +12 V
        self.duty = -1
        self.state = None  # the debounced state; None until the first one is settled
        self.high_mv = 0
        self.low_mv = None
        self._seen = None
        self._count = 0
        pwm.freq(_FREQ)
        self._set_duty(_FULL)

    def _set_duty(self, duty):
        if duty != self.duty:
            self.duty = duty
            self.pwm.duty_u16(_FULL - duty if self._invert else duty)

    def offer(self, amps):
        """Offer `amps` to the EV (0: no current, a steady +12 V)."""
        d = duty_for(amps)
        self.offered = amps if d != _FULL else 0
        self._set_duty(d)

    def mv(self, raw):
        # 12-bit steps keep the products within MicroPython's small integers.
        return ((raw - self._lo) >> 4) * 24000 // (self._span >> 4) - 12000

    def sample(self):
        """One burst of readings; returns how many were taken."""
        buf = self._buf
        adc = self.adc
        t = ticks_us()
        for i in range(_N):
            buf[i] = adc.read_u16()
            t = ticks_add(t, _SPACING_US)
            while ticks_diff(t, ticks_us()) > 0:
                pass
        return _N

    def poll(self):
        """Measure, classify and debounce; True when the debounced state changed."""
        self.sample()
        low = low_level(self._buf, self._flat)
        low = None if low < 0 else self.mv(low)
        return self.feed(self.mv(high_level(self._buf, self._flat)), low)

    def feed(self, high_mv, low_mv):
        """Debounce one measurement (levels in millivolts); True when the state changed."""
        self.high_mv = high_mv
        self.low_mv = low_mv
        s = classify(high_mv, self.state)
        if s in PLUGGED and self.duty != _FULL and low_mv is not None and low_mv > _DIODE_MV:
            s = "E"  # the EV's diode is missing or shorted
        if s != self._seen:
            self._seen = s
            self._count = 1
        elif self._count < _DEBOUNCE:
            self._count += 1
        if self._count >= _DEBOUNCE and s != self.state:
            self.state = s
            return True
        return False
