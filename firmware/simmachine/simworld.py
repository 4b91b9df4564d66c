# The simulated electrical world behind the fake `machine` of the host board, wired as
# boards/host.py says: per connector an EV on the control pilot, a contactor with its auxiliary
# contact, a cable lock with its switch and CT clamps on the supply; and an MFRC522 reader.
#
# The EV follows IEC 61851-1: unplugged, the pilot stays at +12 V (A); plugged, its resistors pull
# the high phase to 9 V (B), and to 6 V (C) once the PWM offers at least 6 A and it wants to
# charge.
# It draws min(what it wants, what the PWM offers) while in C with the contactor closed. The pilot
# ADC returns the PWM wave as the EV loads it, at the instant it is read, plus noise; a CT ADC
# returns the mains sine of the current drawn through the clamp and burden, biased at half the
# reference, plus noise, quantised to 12 bits. Host only, but allocation-conscious all the same:
# integer arithmetic throughout (the sine too: no table), so the unix port's collector does not
# pause in the middle of a burst of readings (the real boards' ADC readings allocate nothing
# either), and small: the simulator's heap figures should be the firmware's, not the world's.
import gc
import math
from random import getrandbits

from hal.timing import ticks_diff, ticks_us
from ocpp.compat import const
from simrfid import Chip

_PILOT_NOISE_MV = const(150)  # RMS
_CT_NOISE = const(16)  # RMS, in read_u16 units: one 12-bit step
_CT_BIAS_ERROR_V = 0.021  # the bias divider is never exactly half the reference
_world = None
# The heap the world's objects took when made (gc.mem_alloc() after a collection, before and
# after): the simulator's own state, which the console's `mem` reports apart ("sim"), so that
# the firmware's figures can be read as a board's. 0 on CPython (no gc.mem_alloc).
heap = 0


# The EV's side of the pilot: what it may draw for the duty cycle it sees.
def amps_for(duty):
    """The current an EV may draw for a duty_u16 (IEC 61851-1 Table A.8); 0 when the duty
    allows no charging (above 97 %, below 8 %, or 5 % digital communication)."""
    pm = (duty * 1000 + 32767) // 65535  # per mille
    if pm < 80 or pm > 970:
        return 0
    if pm < 100:
        return 6
    if pm <= 850:
        return (duty * 60 + 32767) // 65535  # duty % x 0.6
    if pm <= 960:
        return (duty * 250 + 32767) // 65535 - 160  # (duty % - 64) x 2.5
    return 80


def _made(cls, *args):
    global heap
    alloc = getattr(gc, "mem_alloc", None)
    if alloc is None:
        return cls(*args)
    gc.collect()
    a = alloc()
    obj = cls(*args)
    gc.collect()
    heap += alloc() - a
    return obj


def world():
    """The world of the host board, made on first use."""
    global _world
    if _world is None:
        import boards.host

        _world = _made(World, boards.host)
    return _world


def isine(t, period):
    """32767 x sin(2 pi t / period) for 0 <= t < period, in integers: Bhaskara I's rational
    approximation on each half wave (within 0.2 % of full scale, its RMS within 0.1 %)."""
    half = period >> 1
    neg = t >= half
    if neg:
        t -= half
    p = t * (half - t)
    s = 524272 * p // (5 * half * half - 4 * p)  # 16 x 32767 = 524272
    return -s if neg else s


def _noise(rms):
    # A sum of three uniforms: close enough to a normal distribution, in integers.
    return (getrandbits(10) + getrandbits(10) + getrandbits(10) - 1536) * rms // 591


class EV:
    def __init__(self, w, spec):
        self.w = w
        self.spec = spec
        self.plugged = False
        self.max_a = 16  # the most it draws; 0 = it pauses (goes back to state B)
        self.diode = True
        self.shorted = False  # pilot shorted to PE: state E
        self.welded = False  # the contactor's contacts stuck closed
        self.locked = False
        self.lock_fail = False  # the lock jams: it never ends where the motor sends it
        self.phase_us = getrandbits(14)  # where in the mains cycle its current starts

    def duty(self):
        p = self.w.pwm.get(self.spec["pilot_pwm"])
        return 0 if p is None else p[0]

    def offered(self):
        d = self.duty()
        return 0 if d >= 65535 else amps_for(d)

    def state(self):
        if not self.plugged:
            return "A"
        if self.shorted:
            return "E"
        if self.max_a > 0 and self.offered() >= 6:
            return "C"
        return "B"

    def level_mv(self):
        s = self.state()
        if s == "A":
            return 12000
        if s == "B":
            return 9000
        return 6000 if s == "C" else 0

    def relay_closed(self):
        s = self.spec
        return self.welded or self.w.out.get(s["relay"]) == s.get("relay_active", 1)

    def amps(self):
        if self.state() != "C" or not self.relay_closed():
            return 0
        return min(self.max_a, self.offered())

    def pilot_mv(self):
        p = self.w.pwm.get(self.spec["pilot_pwm"])
        if p is None:
            return -12000
        duty, t0 = p
        if duty >= 65535:
            high = True
        elif duty <= 0:
            high = False
        else:
            high = ticks_diff(ticks_us(), t0) % 1000 * 65535 < duty * 1000
        if high or self.shorted:
            return self.level_mv()
        if not self.diode and self.plugged:
            return -self.level_mv()
        return -12000


class World:
    def __init__(self, board):
        self.board = board
        self.out = {}  # output pin -> level last written
        self.pwm = {}  # pin -> [duty_u16, ticks_us at the last change]
        # The EVs are made on first use (ev()): a charger using fewer connectors than the board
        # has does not pay for the others. The pin maps hold connector numbers (small ints).
        self.evs = [None] * len(board.CONNECTORS)
        self.adcs = {}  # ADC pin -> connector << 2 | 0 for the pilot, 1 + the CT's phase index
        self.inputs = {}  # input pin (a contactor's or a lock's feedback) -> connector
        self.motors = {}  # lock motor pin -> connector
        self.ct_scale = {}  # CT pin -> (read_u16 units per amp peak x 1024, the bias)
        hz = getattr(board, "MAINS_HZ", 50)
        self.period_us = 1000000 // hz
        self.vref = getattr(board, "ADC_VREF", 3.3)
        for cid in range(1, len(board.CONNECTORS) + 1):
            s = board.CONNECTORS[cid - 1]
            self.adcs[s["pilot_adc"]] = cid << 2
            for i, ct in enumerate(s["ct"]):
                self.adcs[ct["adc"]] = cid << 2 | (i + 1)
                v_per_a = math.sqrt(2) / ct["ratio"] * ct["burden"]
                self.ct_scale[ct["adc"]] = (int(v_per_a / self.vref * 65536 * 1024),
                                            int((self.vref / 2 + _CT_BIAS_ERROR_V) / self.vref
                                                * 65536))
            if s.get("relay_feedback") is not None:
                self.inputs[s["relay_feedback"]] = cid
            lk = s.get("lock")
            if lk:
                self.motors[lk["motor_a"]] = self.motors[lk["motor_b"]] = cid
                if lk.get("feedback") is not None:
                    self.inputs[lk["feedback"]] = cid
        self.rfid = Chip()
        self.rfid_cs = board.RFID["cs"] if getattr(board, "RFID", None) else None
        self.feeds = 0

    def ev(self, cid):
        ev = self.evs[cid - 1]
        if ev is None:
            ev = self.evs[cid - 1] = _made(EV, self, self.board.CONNECTORS[cid - 1])
        return ev

    # ---- what the fake peripherals call -----------------------------------------------------

    def write(self, pin, v):
        self.out[pin] = v
        cid = self.motors.get(pin)
        if cid is not None and v:  # motor_a locks, motor_b unlocks, unless the lock jams
            ev = self.ev(cid)
            ev.locked = (pin == ev.spec["lock"]["motor_a"]) != ev.lock_fail
        if pin == self.rfid_cs and v == 0:
            self.rfid.select()

    def read(self, pin):
        cid = self.inputs.get(pin)
        if cid is not None:
            return self._feedback(self.ev(cid), pin)
        return self.out.get(pin, 1)  # pulled up

    def _feedback(self, ev, pin):
        s = ev.spec
        if pin == s.get("relay_feedback"):  # the contactor's auxiliary contact
            active = s.get("relay_feedback_active", 1)
            return active if ev.relay_closed() else 1 - active
        active = s["lock"].get("feedback_active", 1)  # the lock's switch
        return active if ev.locked else 1 - active

    def set_pwm(self, pin, duty):
        p = self.pwm.get(pin)
        if p is None or p[0] != duty:
            self.pwm[pin] = [duty, ticks_us()]

    # A reading is taken up to 48 times per pilot poll: these allocate nothing (small frames:
    # see firmware/hal/__init__.py), or the simulator's heap figures would be the world's.
    def adc(self, pin):
        a = self.adcs.get(pin)
        if a is None:
            return 0
        raw = self._pilot_raw(a >> 2) if a & 3 == 0 else self._ct_raw(pin, a)
        return min(max(raw, 0), 65535) & 0xFFF0

    def _pilot_raw(self, cid):
        ev = self.ev(cid)
        cal = ev.spec["pilot_cal"]
        mv = ev.pilot_mv() + _noise(_PILOT_NOISE_MV)
        return cal[0] + (mv + 12000) * (cal[1] - cal[0]) // 24000

    def _ct_raw(self, pin, a):
        ev = self.ev(a >> 2)
        scale = self.ct_scale[pin]
        wave = self._wave(ev, (a & 3) - 1)
        return scale[1] + (ev.amps() * scale[0] >> 10) * wave // 32767 + _noise(_CT_NOISE)

    def _wave(self, ev, phase):
        # 32767 x the mains sine now, at the EV's phase; L2, L3 lag 120 and 240 degrees.
        per = self.period_us
        return isine((ticks_us() + ev.phase_us + phase * per // 3) % per, per)

    def spi(self, w, r):
        if self.rfid_cs is not None and self.out.get(self.rfid_cs) == 0:
            self.rfid.xfer(w, r)
        elif r is not None:
            for i in range(len(r)):
                r[i] = 0xFF  # nobody drives MISO
