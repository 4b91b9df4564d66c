"""Shared by the hardware-layer tests: puts firmware/ (the hal package), the repo root (boards/)
and, on request, firmware/simmachine (the fake `machine`) on sys.path, and makes synthetic
signals: pilot bursts and CT sample buffers as the ADCs would deliver them."""
import asyncio
import math
import os
import random
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(REPO, "firmware")
SIMMACHINE = os.path.join(FIRMWARE, "simmachine")
for _p in (REPO, FIRMWARE):
    if _p not in sys.path:
        sys.path.insert(1, _p)


def simulator():
    """firmware/simmachine on sys.path from here on: `import machine` gets the host board's fake
    and `import simworld` the simulated world behind it."""
    if SIMMACHINE not in sys.path:
        sys.path.insert(1, SIMMACHINE)


def use_fake_machine():
    """`import machine` gets the host board's fake from here on; returns the fresh world."""
    simulator()
    import simworld

    simworld._world = None
    return simworld.world()


# ---- pilot ---------------------------------------------------------------------------------

CAL = (2979, 59577)  # read_u16 at -12 V and +12 V, as boards/host.py


def raw(mv, cal=CAL):
    lo, hi = cal
    r = lo + (mv + 12000) * (hi - lo) / 24000
    return min(max(int(r), 0), 65535) & 0xFFF0


def burst(level_mv, duty, n=48, noise_mv=0.0, low_mv=-12000, rng=random, spacing_us=25,
          t0_us=None):
    """n pilot readings spaced spacing_us apart over a 1 kHz PWM wave whose high phase (duty
    0..1) sits at level_mv and low phase at low_mv."""
    t0 = rng.uniform(0, 1000) if t0_us is None else t0_us
    out = []
    for i in range(n):
        phase = (t0 + i * spacing_us) % 1000
        mv = level_mv if phase < duty * 1000 else low_mv
        out.append(raw(mv + rng.gauss(0, noise_mv) if noise_mv else mv))
    return out


# ---- CT clamps -----------------------------------------------------------------------------

def ct_samples(amps, n=80, per_cycle=40, ratio=2000, burden=33.0, vref=3.3, offset_v=0.0,
               noise_steps=1.0, phase=0.0, rng=random):
    """n readings (read_u16, 12-bit quantised) of a CT carrying `amps` RMS of mains current,
    biased at vref / 2 + offset_v, with Gaussian noise in 12-bit steps."""
    out = []
    for k in range(n):
        i = amps * math.sqrt(2) * math.sin(2 * math.pi * k / per_cycle + phase)
        v = i / ratio * burden + vref / 2 + offset_v
        steps = v / vref * 4096 + rng.gauss(0, noise_steps)
        out.append(min(max(int(round(steps)), 0), 4095) << 4)
    return out


class SeqADC:
    """An ADC returning the given readings in turn (and the last one ever after)."""

    def __init__(self, values):
        self.values = list(values)
        self.i = 0

    def read_u16(self):
        v = self.values[min(self.i, len(self.values) - 1)]
        self.i += 1
        return v


class FakePWM:
    def __init__(self):
        self.f = None
        self.d = None

    def freq(self, f=None):
        self.f = f

    def duty_u16(self, d=None):
        if d is None:
            return self.d
        self.d = d


class FakePin:
    def __init__(self, v=0):
        self.v = v
        self.writes = []

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = 1 if v else 0
        self.writes.append(self.v)


# ---- the whole charger in-process -----------------------------------------------------------

SETTINGS = {"csms_url": "ws://cs", "cp_id": "CP1", "auth_key": "", "ca_file": "", "board": "host",
            "connectors": 2, "vendor": "Acme", "model": "Sim", "serial": "", "repl": False}


class Rig:
    """The real Charger on the hal built from boards/host.py over the fake `machine`, against the
    in-process fake central system. The hardware loop is stepped by hand (tick()), so a test
    decides when the charger looks at the pilot. Use inside a running event loop."""

    def __init__(self, connectors=2):
        self.world = use_fake_machine()
        import boards.host as board
        from charger import Charger
        from hal.hardware import Hardware

        self.board = board
        self.logs = []
        self.hw = Hardware(board, connectors, self.logs.append)
        self.rebooted = 0
        self.hw.reboot = self._reboot
        self.charger = Charger(self.hw, dict(SETTINGS, connectors=connectors), board,
                               self.logs.append)
        self.cp = self.charger.cp
        self.now = 0

    def _reboot(self):
        self.hw.trip()
        self.rebooted += 1

    async def start(self, csms):
        self.hw.start()
        self.charger.engine = self.cp.start()
        await csms.wait_for(lambda: self.cp.registration == "Accepted")

    async def stop(self):
        await self.cp.stop()

    def relay(self, cid):
        spec = self.board.CONNECTORS[cid - 1]
        return self.world.out.get(spec["relay"]) == spec.get("relay_active", 1)

    async def tick(self, n=1, check=None):
        """n rounds of the hardware loop, the event loop running in between; check() after
        each round."""
        from ocpp.compat import ticks_ms

        for _ in range(n):
            self.now = ticks_ms()
            self.charger.tick(self.now)
            if check:
                check()
            await asyncio.sleep(0.002)

    async def until(self, pred, ticks=100, check=None):
        for _ in range(ticks):
            if pred():
                return
            await self.tick(check=check)
        raise AssertionError("not reached; log:\n" + "\n".join(self.logs[-20:]))
