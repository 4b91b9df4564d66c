"""CT metering (firmware/hal/meter.py) with synthetic signals: RMS current within 1 % from 1 A to
32 A with noise and a DC offset, the learnt noise floor, the energy register over a simulated hour
with a late and irregular loop, the measurands per phase; and the same code on MicroPython."""
import math
import os
import random
import subprocess

import pytest

import hwsupport
from hwsupport import SeqADC, ct_samples
from hal.meter import ENERGY, Meter, Register, isqrt, mean_square

CT = {"ratio": 2000, "burden": 33.0}


def meter(phases=1, volts=230, pf=1.0):
    return Meter(tuple(SeqADC([0]) for _ in range(phases)), (CT,) * phases, volts, pf)


def load(m, per_phase):
    """Put per-phase sample lists into the meter's interleaved buffer, as acquire() would."""
    ph = len(per_phase)
    for p, samples in enumerate(per_phase):
        for k, v in enumerate(samples):
            m._buf[k * ph + p] = v


def learn_noise(m, rng, noise, rounds=16):
    for _ in range(rounds):
        load(m, [ct_samples(0, noise_steps=noise, rng=rng) for _ in range(len(m.amps))])
        m.compute(idle=True)


NOISE = 1.0  # ADC noise, 12-bit steps RMS, on top of the 12-bit quantisation


@pytest.mark.parametrize("amps", [1, 1.5, 2, 3, 5, 6, 8, 10, 13, 16, 20, 25, 32])
def test_rms_within_one_percent_with_noise_and_offset(amps):
    rng = random.Random(int(amps * 10))
    m = meter()
    learn_noise(m, rng, NOISE)
    offset = rng.uniform(-0.15, 0.15)  # the bias is never exactly half the reference

    def measure():
        load(m, [ct_samples(amps, offset_v=offset, noise_steps=NOISE, phase=rng.uniform(0, 6.3),
                            rng=rng)])
        m.compute()
        return m.amps[0]

    first = measure()  # a new current: one measurement, already within 3 %
    assert abs(first - amps) / amps < 0.03, (amps, first)
    for _ in range(7):  # the average fills up
        measure()
    for _ in range(40):
        a = measure()
        assert abs(a - amps) / amps < 0.01, (amps, a)


def test_a_step_shows_at_once():
    rng = random.Random(6)
    m = meter()
    learn_noise(m, rng, NOISE)
    for amps in (16, 16, 16, 16, 6, 32, 0, 10):
        load(m, [ct_samples(amps, noise_steps=NOISE, rng=rng)])
        m.compute()
        assert abs(m.amps[0] - amps) < max(0.03 * amps, 0.06), (amps, m.amps[0])


def test_noise_floor_is_learnt_while_idle():
    rng = random.Random(1)
    raw_m, learnt = meter(), meter()
    learn_noise(learnt, rng, 5.0)
    errs_raw, errs_learnt = [], []
    for _ in range(20):
        s = ct_samples(1.0, noise_steps=5.0, phase=rng.uniform(0, 6.3), rng=rng)
        for m, errs in ((raw_m, errs_raw), (learnt, errs_learnt)):
            load(m, [s])
            m.compute()
            errs.append(m.amps[0] - 1.0)
    assert sum(errs_raw) / 20 > 0.02  # 5 steps of noise inflate 1 A (20 steps RMS) by ~3 %
    assert abs(sum(errs_learnt) / 20) < 0.01


def test_idle_reading_is_zero_and_current_is_not_learnt_as_noise():
    rng = random.Random(2)
    m = meter()
    learn_noise(m, rng, NOISE)
    for _ in range(10):
        load(m, [ct_samples(0, noise_steps=NOISE, rng=rng)])
        assert m.compute() == 0 and m.amps[0] == 0
    # A contactor that is open but welded: 10 A flow while "idle". That is not noise.
    load(m, [ct_samples(10, noise_steps=NOISE, rng=rng)])
    m.compute(idle=True)
    load(m, [ct_samples(10, noise_steps=NOISE, rng=rng)])
    m.compute()
    assert abs(m.amps[0] - 10) < 0.1


def test_rms_helper():
    # A sine of amplitude 1000 steps around 2048: RMS 707.1, mean 2048.
    buf = [int(round(2048 + 1000 * math.sin(2 * math.pi * k / 40))) << 4 for k in range(80)]
    r = math.sqrt(mean_square(buf, 0, 1) / 16)
    assert abs(r - 707.1) < 0.5
    # Every third reading of an interleaved buffer; a DC offset does not count.
    buf3 = [0] * 240
    buf3[1::3] = [v + (300 << 4) for v in buf]
    assert abs(math.sqrt(mean_square(buf3, 1, 3) / 16) - 707.1) < 0.5
    assert mean_square([2048 << 4] * 80, 0, 1) == 0
    assert mean_square([2100 << 4] * 80, 0, 1) == 0


def test_mean_square_stays_within_small_ints_on_32_bit():
    # On a 32-bit MCU ints beyond 2**30 are heap objects: 32 A with the bias 0.15 V off keeps
    # every intermediate below that (the sums are taken about the mean, not the midpoint).
    from hal import meter as mod

    buf = ct_samples(32, offset_v=0.15, noise_steps=1.0)
    c = 2048 + mod._sum_d(buf, 0, 1, 2048) // 80
    q, s = mod._sum_d2(buf, 0, 1, c), mod._sum_d(buf, 0, 1, c)
    assert 16 * q < 2**30 and 0 <= s < 80 and 16 * s * s < 2**30


def test_isqrt():
    for v in list(range(200)) + [10**6, 10**6 - 1, 2**30 - 1, 4 * 10**8 + 12345]:
        assert isqrt(v) == math.isqrt(v), v


def test_three_phases_interleaved_and_power():
    rng = random.Random(4)
    m = meter(phases=3, volts=230, pf=0.95)
    learn_noise(m, rng, 1.0)
    load(m, [ct_samples(a, noise_steps=1.0, phase=p * 2.094, rng=rng)
             for p, a in enumerate((16, 10, 5))])
    w = m.compute()
    assert [round(a) for a in m.amps] == [16, 10, 5]
    assert abs(w - 230 * 31 * 0.95) / w < 0.01
    m.register.set_power(w, 0)
    assert m.read("Current.Import") == pytest.approx(16, rel=0.01)  # the most loaded phase
    assert m.read("Current.Import.L2") == pytest.approx(10, rel=0.01)
    assert m.read("Current.Import.L3") == pytest.approx(5, rel=0.01)
    assert m.read("Voltage") == 230 and m.read("Voltage.L1-N") == 230
    assert m.read("Power.Active.Import") == round(w)
    assert m.read("Temperature") is None and m.read("Current.Import.N") is None


def test_single_phase_has_no_l2():
    m = meter()
    assert m.read("Current.Import.L2") is None and m.read("Current.Import.L1") == 0


def test_energy_over_an_hour_with_a_late_loop():
    # One simulated hour of a charge whose current changes every few minutes, metered by a
    # loop that should run every second but is late by up to 2.5 s, at random. The register
    # integrates over the ticks that really elapsed: it stays within 1 % of the true energy.
    rng = random.Random(9)
    reg = Register()
    profile = []  # (until ms, watts)
    t = 0
    while t < 3600000:
        t += rng.randint(60000, 600000)
        profile.append((min(t, 3600000), rng.choice([0, 1380, 3680, 7360, 11040, 22080])))

    def watts(ms):
        for until, w in profile:
            if ms < until:
                return w
        return profile[-1][1]

    true_mj = 0
    for ms in range(0, 3600000, 100):  # the truth, at 100 ms resolution
        true_mj += watts(ms) * 100
    now = 0
    while now < 3600000:
        reg.set_power(watts(now), now)  # measure, then hold until the next measurement
        now = min(now + 1000 + rng.choice([0, 0, 0, 10, 250, 2500]), 3600000)
    reg.integrate(now)
    true_wh = true_mj / 3600000
    assert abs(reg.wh - true_wh) / true_wh < 0.01, (reg.wh, true_wh)


def test_energy_has_no_drift():
    # Constant 3680 W for an hour, read at irregular moments: exactly 3680 Wh, whatever the
    # lateness, since whole Wh and leftover millijoules are integers.
    rng = random.Random(11)
    reg = Register()
    reg.set_power(3680, 0)
    now = 0
    while now < 3600000:
        now = min(now + rng.randint(1, 4000), 3600000)
        reg.integrate(now)
    assert reg.wh == 3680


def test_energy_survives_the_ticks_wrap():
    reg = Register()
    start = 0x3FFFFFFF - 500  # ticks_ms wraps at 2**30
    reg.set_power(3600, start)
    reg.integrate((start + 2000) & 0x3FFFFFFF)
    assert reg.wh == 2 and reg._mj == 0


def test_read_energy_integrates_to_now(monkeypatch):
    from hal import meter as mod

    m = meter()
    clock = [1000]
    monkeypatch.setattr(mod, "ticks_ms", lambda: clock[0])
    m.register.set_power(7200, 1000)
    clock[0] = 1000 + 5000  # 5 s at 7.2 kW = 10 Wh
    assert m.read(ENERGY) == 10


def test_acquire_paces_whole_cycles():
    adc = SeqADC(range(0, 65535, 100))
    m = Meter((adc,), (CT,), 230, hz=50)
    import time

    t = time.perf_counter()
    m.acquire()
    took = time.perf_counter() - t
    assert adc.i == 80 and list(m._buf[:3]) == [0, 100, 200]
    assert 0.039 <= took < 0.2  # two 20 ms cycles


class StallingADC(SeqADC):
    """Stalls 3 ms on the given readings, as an interrupt or a busy host would."""

    def __init__(self, stalls):
        super().__init__([32768])
        self.stalls = stalls

    def read_u16(self):
        if self.i in self.stalls:
            import time

            time.sleep(0.003)
        return super().read_u16()


def test_a_disturbed_acquisition_is_retried_then_held():
    adc = StallingADC({10})
    m = Meter((adc,), (CT,), 230)
    assert not m.acquire()  # a sample 3 ms late: the rest no longer cover the cycles evenly
    adc.i = 0
    adc.stalls = set()
    assert any(m.acquire() for _ in range(20))  # (the test machine itself may stall one)
    m.register.set_power(1000.0, 0)
    adc.stalls = set(range(0, 100000, 80))  # every try disturbed
    adc.i = 0
    for n in range(4):
        assert not m.update() and m.register.power_w == 1000.0  # the last power holds
    assert m.update() and m.register.power_w == 0.0  # after 5 s a disturbed one is better
    assert m.missed == 0


def test_same_code_on_micropython(tmp_path):
    mp = os.path.join(hwsupport.REPO, ".venv", "bin", "micropython")
    if not os.path.exists(mp):
        pytest.skip("no MicroPython unix port")
    env = dict(os.environ, MICROPYPATH=":".join(
        [os.path.join(hwsupport.REPO, "lib"), hwsupport.FIRMWARE, hwsupport.SIMMACHINE,
         hwsupport.REPO, ".frozen"]))
    script = os.path.join(os.path.dirname(__file__), "mp_hal_check.py")
    r = subprocess.run([mp, script], env=env, capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)  # the library keeps its configuration in files here
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr


def test_the_simulated_mains_sine():
    # The host board's CT waveform (firmware/simmachine/simworld.py): an integer sine, within
    # 0.2 % of full scale everywhere, its RMS within 0.1 %, odd symmetry over the cycle.
    hwsupport.use_fake_machine()
    from simworld import isine

    per = 20000
    err = max(abs(isine(t, per) - 32767 * math.sin(2 * math.pi * t / per)) for t in range(per))
    assert err < 0.002 * 32767
    rms = math.sqrt(sum(isine(t, per) ** 2 for t in range(per)) / per)
    assert abs(rms / (32767 / math.sqrt(2)) - 1) < 0.001
    assert isine(0, per) == 0
    assert isine(per // 4, per) == 32767 and isine(3 * per // 4, per) == -32767
