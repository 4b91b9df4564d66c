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
# The samples must be evenly spaced for that: an acquisition in which one came more than half a
# step late (an interrupt, Wi-Fi, the host's scheduler) is taken again, and when none of _TRIES
# is clean the last power holds for this second.
from array import array
from math import sqrt

from ocpp.compat import const, ticks_diff, ticks_ms

from .timing import sleep_us, ticks_add, ticks_us

_PER_CYCLE = const(40)  # samples per mains cycle
_CYCLES = const(2)
_TRIES = const(3)  # acquisitions disturbed by an interrupt (Wi-Fi, the host's scheduler) retried
_MISS = const(5)  # after this many updates without an undisturbed one, take a disturbed one
_SLACK_US = const(120)  # sleep until this close to a sample's time, then spin: an OS oversleeps
_MJ_PER_WH = const(3600000)
_AVG = const(8)  # measurements averaged at a steady current
_JUMP = 0.15  # a mean square this much off the average is a new current: restart the average
_FLOOR_A = 0.05  # below this a phase reads 0 A: the residue of the noise
_LEARN_A = 0.5  # idle noise above this is not noise but a fault (e.g. a welded contactor)

ENERGY = "Energy.Active.Import.Register"


def rms(buf, start, stride, n):
    """(mean, RMS about the mean) of n readings buf[start], buf[start + stride], ... in 12-bit
    steps (the ADCs' real resolution; it also keeps the squares within small integers)."""
    s = 0
    i = start
    for _ in range(n):
        s += buf[i] >> 4
        i += stride
    mean = (2 * s + n) // (2 * n)  # rounded
    acc = 0
    i = start
    for _ in range(n):
        d = (buf[i] >> 4) - mean
        acc += d * d
        i += stride
    # The rounding of the mean would add its square to the mean square: take it out.
    e = s / n - mean
    ms = acc / n - e * e
    return s / n, sqrt(ms) if ms > 0 else 0.0


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
        self.power_w = 0.0

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
        ph = len(adcs)
        self._n = _PER_CYCLE * _CYCLES
        self._step = 1000000 // (hz * _PER_CYCLE)
        self._buf = array("H", bytes(2 * self._n * ph))
        self._scale = array("f", bytes(4 * ph))  # amps per RMS 12-bit step
        self._noise2 = array("f", bytes(4 * ph))  # noise power, in steps squared
        self._ms = array("f", bytes(4 * ph))  # averaged mean square, in steps squared
        self._k = bytearray(ph)  # measurements in that average
        for i in range(ph):
            ct = cts[i]
            self._scale[i] = vref / 4096 / ct["burden"] * ct["ratio"] * ct.get("cal", 1.0)
        self.amps = array("f", bytes(4 * ph))
        self.volts = volts
        self.pf = pf
        self.register = Register()
        self.missed = 0  # updates in a row that found no undisturbed acquisition

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
        """Currents from the buffer. idle: the contactor is open, so what is seen is noise."""
        ph = len(self._adcs)
        total = 0.0
        for p in range(ph):
            r = rms(self._buf, p, ph, self._n)[1]
            ms = r * r
            n2 = self._noise2[p]
            if idle and r * self._scale[p] < _LEARN_A:
                n2 = self._noise2[p] = ms if n2 == 0 else n2 + (ms - n2) / 8
            avg = self._ms[p]
            k = self._k[p]
            if k == 0 or abs(ms - avg) > avg * _JUMP + 4 * n2 + 1:
                avg = ms
                k = 1
            else:
                if k < _AVG:
                    k += 1
                avg += (ms - avg) / k
            self._ms[p] = avg
            self._k[p] = k
            ms = avg - n2
            a = sqrt(ms) * self._scale[p] if ms > 0 else 0.0
            if a < _FLOOR_A:
                a = 0.0
            self.amps[p] = a
            total += a
        return total * self.volts * self.pf

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
            return int(self.register.power_w + 0.5)
        if measurand.startswith("Current.Import"):
            return self._current(measurand)
        if measurand.startswith("Voltage"):
            if measurand == "Voltage":
                return self.volts
            p = _phase(measurand)
            return None if p is None or p >= len(self.amps) else self.volts
        return None

    def _current(self, measurand):
        amps = self.amps
        if measurand == "Current.Import":  # no phase given: the most loaded one
            return round(max(amps), 2)
        p = _phase(measurand)
        return None if p is None or p >= len(amps) else round(amps[p], 2)


def _phase(measurand):
    # "Current.Import.L2" -> 1, "Voltage.L3-N" -> 2
    i = measurand.find(".L")
    if i < 0 or i + 2 >= len(measurand):
        return None
    c = measurand[i + 2]
    return "123".find(c) if c in "123" else None
