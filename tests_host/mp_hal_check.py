# Run by test_meter.py on the MicroPython unix port (MICROPYPATH=lib:firmware, and
# firmware/simmachine for the simulated EV): the pilot and metering algorithms with synthetic
# signals, so what the CPython tests check also holds for the interpreter the boards run, and ADC
# processing allocates nothing per sample there.
import gc
import math
import micropython
import random
import sys

from hal.meter import Meter, Register
from hal.pilot import Pilot, classify, duty_for, high_level, low_level
from simworld import amps_for  # the EV's side of the pilot (firmware/simmachine)

CT = {"ratio": 2000, "burden": 33.0}


class ADC:
    def __init__(self):
        self.v = 0

    def read_u16(self):
        return self.v


class PWM:
    def freq(self, f):
        pass

    def duty_u16(self, d):
        pass


def gauss():
    return (random.random() + random.random() + random.random() - 1.5) * 2


def fill(m, amps, noise):
    off = random.uniform(-0.1, 0.1)
    ph = random.uniform(0, 6.3)
    for k in range(80):
        i = amps * math.sqrt(2) * math.sin(2 * math.pi * k / 40 + ph)
        steps = (i / 2000 * 33.0 + 1.65 + off) / 3.3 * 4096 + gauss() * noise
        m._buf[k] = min(max(int(steps + 0.5), 0), 4095) << 4


random.seed(1)
m = Meter((ADC(),), (CT,), 230)
for _ in range(16):
    fill(m, 0, 1.0)
    m.compute(idle=True)
for amps in (1, 2, 5, 10, 16, 32):
    for i in range(20):
        fill(m, amps, 1.0)
        m.compute()
        err = abs(m.amps[0] - amps) / amps
        assert err < (0.03 if i < 8 else 0.01), (amps, m.amps[0])

for a in range(6, 81):
    if a != 52:
        assert amps_for(duty_for(a)) == a, a
assert classify(9000) == "B" and classify(7499, "B") == "B" and classify(7099, "B") == "C"

p = Pilot(PWM(), ADC(), (2979, 59577))
buf = p._buf
for i in range(48):
    buf[i] = 2979 + (6000 + 12000) * (59577 - 2979) // 24000 if i % 4 == 0 else 2979
high, low = high_level(buf, 4700), low_level(buf, 4700)
assert classify(p.mv(high)) == "C" and p.mv(low) < -11000, (p.mv(high), p.mv(low))

r = Register()
r.set_power(3680, 0)
t = 0
while t < 3600000:
    t += 1337
    r.integrate(t)
assert r.wh == 3680 + 3680 * (t - 3600000) // 3600000, r.wh

# No allocation per sample, nor per measurement: the pilot allocates nothing at all per poll,
# nor the meter per acquisition and computation.
def alloc(fn):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    fn()
    b = gc.mem_alloc()
    gc.enable()
    return b - a


for f in (high_level, low_level):
    assert alloc(lambda: f(buf, 4700)) == 0, f
p.adc.v = 30000
p.poll()
assert alloc(p.poll) == 0  # the hardware loop polls 20 times a second per connector
m.compute()
assert alloc(m.compute) == 0  # integers throughout: once a second per connector
m.acquire()
assert alloc(m.acquire) == 0


# The whole hardware loop: the charger's tick over the ESP32 board's hardware layer (a stub
# `machine` in place of the board's), every connector idle. 20 ticks a second: none allocates,
# the meter's measurement and the reader's poll included.
class Machine:
    class Pin:
        IN = 0
        OUT = 1
        PULL_UP = 1

        def __init__(self, id, mode=-1, pull=-1):
            self.v = 1

        def value(self, v=None):
            if v is None:
                return self.v
            self.v = v

    class ADC:
        def __init__(self, pin):
            pass

        def read_u16(self):
            return 58385  # +12 V on the pilot: no EV

    class PWM(PWM):
        def __init__(self, pin):
            pass

    class SPI:
        def __init__(self, id, **kw):
            pass

        def write(self, buf):
            pass

        def write_readinto(self, w, r):
            r[1] = 0x92 if w[0] == 0xEE else 0  # the version register, and no card ever

    class WDT:
        def __init__(self, timeout=0):
            pass

        def feed(self):
            pass


sys.modules["machine"] = Machine
import boards.esp32_devkitc as board  # noqa: E402
from charger import Charger  # noqa: E402
from hal.hardware import Hardware  # noqa: E402
from ocpp import api  # noqa: E402
from ocpp.compat import ticks_ms  # noqa: E402

hw = Hardware(board, 1, print)
settings = {"vendor": "V", "model": "M", "serial": "", "connectors": 1, "csms_url": "ws://x",
            "cp_id": "CP1", "auth_key": "", "ca_file": ""}
ch = Charger(hw, settings, board, print)
hw.start()
assert hw.rfid.ok


def ticks(n):
    for _ in range(n):
        ch.tick(ticks_ms())


ch.ticks = sys.maxsize  # as after years of ticks: the count must not stay a big int
ticks(40)
assert alloc(lambda: ticks(40)) == 0  # 40 ticks: two measurements, eight reader polls
assert ch.hw.port(1).pilot.state == "A"


def allocs(fn):
    # Bytes allocated, those freed at once included: a frame too large for the C stack.
    a = micropython.mem_total()
    fn()
    return micropython.mem_total() - a


assert allocs(lambda: ticks(40)) == 0
# The library reads every measurand of every connector each MeterValueSampleInterval. (Amps are
# a float: one small object.)
for what in ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Offered",
             "Voltage"):
    assert allocs(lambda: ch.callback(api.GET_METER_VALUE, 1, what)) == 0, what
assert allocs(lambda: ch.callback(api.GET_METER_VALUE, 1, "Current.Import")) <= 32
print("OK")
