# Run by test_meter.py on the MicroPython unix port (MICROPYPATH=lib:firmware): the pilot and
# metering algorithms with synthetic signals, so what the CPython tests check also holds for the
# interpreter the boards run, and ADC processing allocates nothing per sample there.
import gc
import math
import random

from hal.meter import Meter, Register
from hal.pilot import Pilot, amps_for, classify, duty_for, high_level, low_level

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
high, low = high_level(buf, 48, 4700), low_level(buf, 48, 4700)
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
    assert alloc(lambda: f(buf, 48, 4700)) == 0, f
p.adc.v = 30000
p.poll()
assert alloc(p.poll) == 0  # the hardware loop polls 20 times a second per connector
m.compute()
assert alloc(m.compute) == 0  # integers throughout: once a second per connector
m.acquire()
assert alloc(m.acquire) == 0
print("OK")
