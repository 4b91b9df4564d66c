# Metering from CT clamps. Each clamp's secondary current flows through a burden resistor biased at
# half the ADC's reference, so the ADC sees the mains current as a sine around a DC offset. Once a
# second, every phase of a connector is sampled over whole mains cycles (the phases interleaved in
# one preallocated buffer, no allocation per sample); the mean over whole cycles is the offset, and
# what is left gives the RMS current. Power = voltage x current x power factor per phase (voltage
# is the board's nominal one: there is no voltage sensing), and the energy register integrates it
# over the ticks that really elapsed, so a late loop loses nothing.
#
# The ADC's noise adds to the mean square; it is learnt while the contactor is open (no current can
# flow) and taken out again. What is left still scatters from one measurement to the next (the
# noise correlates a little with the signal in a short window), so the mean square is averaged
# over the last _AVG measurements, and the average restarts at once when the current jumps: a
# steady current reads within 1 % down to 1 A, a step shows within one measurement.
#
# All of it in integers (milliamps, watts, mean squares in 1/16 of a 12-bit step squared): on
# MicroPython every float is an object on the heap, and a measurement runs every second per
# connector. Squares are summed about the mean, so they stay small ints (under 2**30) on a 32-bit
# MCU up to about 45 A on the shipped boards' CTs (100 A : 50 mA on 33 ohms), whatever the DC
# bias; above that, big ints take over: still exact, but allocating.
#
# The samples must be evenly spaced for that: an acquisition in which one came more than half a
# step late (an interrupt, Wi-Fi, the host's scheduler) is taken again, and when none of _TRIES
# is clean the last power holds for this second.
from array import array

from ocpp.compat import const, ticks_diff, ticks_ms

from .timing import sleep_us, ticks_add, ticks_us

_PER_CYCLE = const(40)  # samples per mains cycle
_CYCLES = const(2)
_TRIES = const(3)  # acquisitions disturbed by an interrupt (Wi-Fi, the host's scheduler) retried
_MISS = const(5)  # after this many updates without an undisturbed one, take a disturbed one
_SLACK_US = const(120)  # sleep until this close to a sample's time, then spin: an OS oversleeps
_MJ_PER_WH = const(3600000)
_AVG = const(8)  # measurements averaged at a steady current
_JUMP_PCT = const(15)  # a mean square this far off the average is a new current: restart it
_FLOOR_MA = const(50)  # below this a phase reads 0 A: the residue of the noise
_LEARN_MA = const(500)  # idle noise above this is not noise but a fault (a welded contactor)
_MID = const(2048)  # the ADC's midpoint in 12-bit steps, about where the CT's bias sits
# What a meter keeps per phase p, in one int array at p * _SLOTS + ...: one array, not four, for
# a few hundred bytes less per connector.
_K = const(0)  # milliamps per unit of isqrt(mean square << 6) (= 32 RMS steps), x 1024
_NOISE = const(1)  # the learnt noise power (mean_square()'s units, as the two below)
_AVG_MS = const(2)  # the mean square averaged over the last measurements
_COUNT = const(3)  # how many measurements that average holds
_SLOTS = const(4)

ENERGY = "Energy.Active.Import.Register"


def _sum_d(buf, i, stride, c):
    # Sum of (reading - c) over buf[i], buf[i + stride], ..., in 12-bit steps.
    s = 0
    while i < len(buf):
        s += (buf[i] >> 4) - c
        i += stride
    return s


def _sum_d2(buf, i, stride, c):
    # Sum of (reading - c) squared over the same readings.
    s = 0
    while i < len(buf):
        d = (buf[i] >> 4) - c
        s += d * d
        i += stride
    return s


def _floor_mean(buf, i, stride):
    return _MID + _sum_d(buf, i, stride, _MID) // (len(buf) // stride)


def mean_square(buf, start, stride):
    """16 x the mean square about their mean of the readings buf[start], buf[start + stride],
    ... to the end of buf (len(buf) a multiple of stride), in 12-bit steps squared (the ADCs'
    real resolution), as an int."""
    # About c, the mean rounded down to a step: the squares hold the AC part only, and the
    # correction for the rest of the mean (s, under n) is tiny.
    c = _floor_mean(buf, start, stride)
    q = _sum_d2(buf, start, stride, c)
    s = _sum_d(buf, start, stride, c)
    return (16 * q - 16 * s * s // (len(buf) // stride)) // (len(buf) // stride)


def isqrt(v):
    """The integer square root of an int v >= 0 (Newton's method)."""
    if v < 2:
        return v
    x = v
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + v // x) >> 1
    return x


def _wait_until(t):
    """Wait for the ticks_us() time t; returns how many us late that was. Sleeps until
    _SLACK_US before it, then spins: an OS oversleeps."""
    d = ticks_diff(t, ticks_us())
    if d > _SLACK_US:
        sleep_us(d - _SLACK_US)
    while ticks_diff(t, ticks_us()) > 0:
        pass
    return ticks_diff(ticks_us(), t)


class Register:
    """The energy register: power held between measurements, integrated over elapsed ticks,
    kept as whole Wh plus the millijoules not yet a whole Wh (integers: no drift)."""

    def __init__(self, wh=0):
        self.wh = wh
        self._mj = 0
        self._last = None
        self.power_w = 0  # whole watts

    def integrate(self, now):
        last = self._last
        self._last = now
        if last is None:
            return
        dt = ticks_diff(now, last)
        if dt <= 0:
            return
        mj = self._mj + int(self.power_w * dt)  # W x ms = mJ
        if mj >= _MJ_PER_WH:
            self.wh += mj // _MJ_PER_WH
            mj %= _MJ_PER_WH
        self._mj = mj

    def set_power(self, w, now):
        """Close the interval at `now` with the old power, then hold the new one."""
        self.integrate(now)
        self.power_w = w


class Meter:
    def __init__(self, adcs, cts, volts, pf=1.0, vref=3.3, hz=50):
        """adcs: one ADC per phase; cts: the board's CT dicts (ratio, burden, cal)."""
        self._adcs = adcs
        ph = self._ph = len(adcs)
        self._step = 1000000 // (hz * _PER_CYCLE)
        self._buf = array("H", bytes(2 * _PER_CYCLE * _CYCLES * ph))
        self._st = array("i", bytes(4 * _SLOTS * ph))  # per phase: _K, _NOISE, _AVG_MS, _COUNT
        self.ma = array("i", bytes(4 * ph))  # the current per phase in mA
        for i in range(ph):
            ct = cts[i]
            amps_per_step = vref / 4096 / ct["burden"] * ct["ratio"] * ct.get("cal", 1.0)
            self._st[i * _SLOTS + _K] = int(amps_per_step * 1000 / 32 * 1024 + 0.5)
        self.volts = volts
        # Decivolts, the power factor included: mA x dV stays a small int on a 32-bit MCU.
        self._dv = int(volts * pf * 10 + 0.5)
        self.register = Register()
        self.missed = 0  # updates in a row that found no undisturbed acquisition

    @property
    def amps(self):
        """The current per phase in A (a new list: for the REPL and the tests)."""
        return [ma / 1000 for ma in self.ma]

    @property
    def wh(self):
        return self.register.wh

    def start_from(self, wh):
        """Go on counting from `wh` (a register saved on flash: CT clamps forget at power-off)."""
        self.register.wh = wh

    def acquire(self):
        """Sample every phase over _CYCLES whole mains cycles, paced by ticks_us. False when a
        sample came more than half a step late: the samples no longer cover whole cycles
        evenly, which would bias the RMS. (Small frames, as in the hardware loop: no
        allocation, hal/__init__.py.)"""
        worst = 0
        i = 0
        t = ticks_us()
        while i < len(self._buf):
            i = self._read_phases(i)
            t = ticks_add(t, self._step)
            worst = max(worst, _wait_until(t))  # how late the next sample comes
        return worst <= self._step >> 1

    def _read_phases(self, i):
        """One reading of every phase into the buffer from index i; returns the next index."""
        buf = self._buf
        adcs = self._adcs
        for p in range(len(adcs)):
            buf[i + p] = adcs[p].read_u16()
        return i + len(adcs)

    def compute(self, idle=False):
        """Currents from the buffer (self.ma); returns the power in W. idle: the contactor is
        open, so what is seen is noise."""
        w = 0
        for p in range(self._ph):
            w += self._phase(p, idle)
        return w

    def _phase(self, p, idle):
        # One phase: its current into self.ma[p], its power in W returned.
        ms = mean_square(self._buf, p, self._ph)
        q = p * _SLOTS
        if idle and self._milliamps(q, ms) < _LEARN_MA:
            self._learn(q, ms)
        ms = self._average(q, ms) - self._st[q + _NOISE]
        ma = self._milliamps(q, ms)
        self.ma[p] = ma if ma >= _FLOOR_MA else 0
        return (self.ma[p] * self._dv + 5000) // 10000

    # q below: the phase's first index in self._st.

    def _learn(self, q, ms):
        # The ADC's noise adds its power to the mean square: learnt while nothing flows.
        n2 = self._st[q + _NOISE]
        self._st[q + _NOISE] = ms if n2 == 0 else n2 + (ms - n2) // 8

    def _average(self, q, ms):
        # The mean square averaged over the last _AVG measurements, restarted when it jumps.
        st = self._st
        avg = st[q + _AVG_MS]
        if st[q + _COUNT] == 0 or abs(ms - avg) > avg * _JUMP_PCT // 100 + 4 * st[q + _NOISE] + 16:
            st[q + _COUNT] = 1
            avg = ms
        else:
            if st[q + _COUNT] < _AVG:
                st[q + _COUNT] += 1
            avg += (ms - avg) // st[q + _COUNT]
        st[q + _AVG_MS] = avg
        return avg

    def _milliamps(self, q, ms):
        return isqrt(ms << 6) * self._st[q + _K] >> 10 if ms > 0 else 0

    def update(self, idle=False):
        """One measurement: sample, compute, and move the energy register on. When every try
        was disturbed, the last power holds (the register still moves on) unless that has gone
        on for _MISS updates."""
        for _ in range(_TRIES):
            if self.acquire():
                break
        else:
            self.missed += 1
            if self.missed < _MISS:
                self.register.integrate(ticks_ms())
                return False
        self.missed = 0
        self.register.set_power(self.compute(idle), ticks_ms())
        return True

    def read(self, measurand):
        """A measurand's value for the OCPP engine, or None for one this meter lacks."""
        if measurand == ENERGY:
            self.register.integrate(ticks_ms())
            return self.register.wh
        if measurand == "Power.Active.Import":
            return round(self.register.power_w)
        if measurand.startswith("Current.Import"):
            return self._current(measurand)
        if measurand.startswith("Voltage"):
            if measurand == "Voltage":
                return self.volts
            p = _phase(measurand)
            return None if p is None or p >= self._ph else self.volts
        return None

    def _current(self, measurand):
        ma = self.ma
        if measurand == "Current.Import":  # no phase given: the most loaded one
            return round(max(ma) / 1000, 2)
        p = _phase(measurand)
        return None if p is None or p >= len(ma) else round(ma[p] / 1000, 2)


def _phase(measurand):
    # "Current.Import.L2" -> 1, "Voltage.L3-N" -> 2
    i = measurand.find(".L")
    if i < 0 or i + 2 >= len(measurand):
        return None
    c = measurand[i + 2]
    return "123".find(c) if c in "123" else None
