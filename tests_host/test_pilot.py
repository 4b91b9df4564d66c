"""The IEC 61851-1 control pilot (firmware/hal/pilot.py) with synthetic signals: the duty cycle for
an offered current and back, state classification at every boundary and with hysteresis, bursts
with noise, spikes and every duty cycle, debouncing, and the diode check."""
import random

import pytest

import hwsupport  # (puts firmware/ on the path)
from hwsupport import CAL, FakePWM, SeqADC, burst, raw
from hal import pilot
from hal.pilot import Pilot, classify, duty_for, high_level, low_level


def amps_for(duty):
    # The EV's side of the pilot, in the simulator (firmware/simmachine/simworld.py).
    hwsupport.simulator()
    from simworld import amps_for

    return amps_for(duty)


def levels(buf, n, flat):
    """(high, low) of a burst's first n readings as the pilot sees them; low None for a steady
    level."""
    low = low_level(buf[:n], flat)
    return high_level(buf[:n], flat), None if low < 0 else low


LEVELS = {"A": 12000, "B": 9000, "C": 6000, "D": 3000, "E": 0, "F": -12000}


def test_duty_for_the_standard_table():
    assert duty_for(0) == duty_for(5) == 65535  # no current: a steady +12 V
    assert round(duty_for(6) / 655.35, 1) == 10.0
    assert round(duty_for(16) / 655.35, 2) == 26.67
    assert round(duty_for(32) / 655.35, 2) == 53.33
    assert round(duty_for(51) / 655.35, 1) == 85.0
    assert round(duty_for(63) / 655.35, 1) == 89.2  # 63 / 2.5 + 64
    assert round(duty_for(80) / 655.35, 1) == 96.0
    assert duty_for(100) == duty_for(80)


@pytest.mark.parametrize("amps", range(6, 81))
def test_the_ev_reads_back_the_offered_current(amps):
    got = amps_for(duty_for(amps))
    # 52 A falls just under 85 %, where the EV's table says duty x 0.6 = 50.9 A.
    assert abs(got - amps) <= 1 if amps == 52 else got == amps


def test_duties_that_allow_no_charging():
    for pct in (0, 3, 5, 7.9, 97.1, 100):
        assert amps_for(int(pct * 655.35)) == 0, pct


def test_classify_nominal_levels():
    for state, mv in LEVELS.items():
        assert classify(mv) == state
        for prev in pilot.STATES:
            assert classify(mv, prev) == state  # nominal levels are far from any threshold


@pytest.mark.parametrize("upper,lower,bound", [("A", "B", 10500), ("B", "C", 7500),
                                               ("C", "D", 4500), ("D", "E", 1500),
                                               ("E", "F", -10500)])
def test_classify_boundaries_and_hysteresis(upper, lower, bound):
    # Without history the threshold is the midpoint.
    assert classify(bound) == upper
    assert classify(bound - 1) == lower
    # Coming from the upper state, a level must fall 0.4 V below the midpoint to leave it...
    assert classify(bound - 399, upper) == upper
    assert classify(bound - 401, upper) == lower
    # ...and coming from the lower state, rise 0.4 V above it.
    assert classify(bound + 399, lower) == lower
    assert classify(bound + 400, lower) == upper


def test_between_minus_1_5_and_minus_10_5_volts_is_an_error():
    for mv in (-2000, -5000, -9000):
        assert classify(mv) == "E"


@pytest.mark.parametrize("duty", [0.10, 0.16, 0.2667, 0.5, 0.85, 0.96])
@pytest.mark.parametrize("state", ["B", "C", "D"])
def test_levels_split_the_pwm_wave(duty, state):
    rng = random.Random(7)
    for _ in range(50):
        b = burst(LEVELS[state], duty, noise_mv=150, rng=rng)
        high, low = levels(b, len(b), 4700)
        p = Pilot(FakePWM(), SeqADC([0]), CAL)
        assert classify(p.mv(high)) == state
        if duty < 0.96:  # at 96 % a burst may hold a single low reading: no low level then
            assert low is not None and p.mv(low) < -11000


def test_a_steady_level_has_no_low_phase():
    b = burst(9000, 1.0, noise_mv=150)
    high, low = levels(b, len(b), 4700)
    assert low is None and abs(Pilot(FakePWM(), SeqADC([0]), CAL).mv(high) - 9000) < 200


def test_a_spike_on_a_steady_level_is_ignored():
    b = burst(12000, 1.0)
    b[17] = raw(-12000)  # one reading far off
    high, low = levels(b, len(b), 4700)
    assert low is None and classify(Pilot(FakePWM(), SeqADC([0]), CAL).mv(high)) == "A"


def make_pilot():
    return Pilot(FakePWM(), SeqADC([0]), CAL)


def test_offer_sets_the_pwm():
    pwm = FakePWM()
    p = Pilot(pwm, SeqADC([0]), CAL)
    assert pwm.f == 1000 and pwm.d == 65535 and p.offered == 0
    p.offer(16)
    assert pwm.d == duty_for(16) and p.offered == 16
    p.offer(3)
    assert pwm.d == 65535 and p.offered == 0
    inv = FakePWM()
    q = Pilot(inv, SeqADC([0]), CAL, invert=True)
    q.offer(32)
    assert inv.d == 65535 - duty_for(32)


def test_debounce_needs_two_polls_in_a_row():
    p = make_pilot()
    assert not p.feed(12000, None) and p.state is None
    assert p.feed(12000, None) and p.state == "A"
    assert not p.feed(9000, None) and p.state == "A"  # one glitch
    assert not p.feed(12000, None) and p.state == "A"
    assert not p.feed(9000, None)
    assert p.feed(9000, None) and p.state == "B"


def test_noisy_pilot_never_flickers():
    # 0.5 V of noise on every reading, the EV charging at 16 A: the debounced state stays C.
    rng = random.Random(3)
    p = make_pilot()
    p.offer(16)
    changes = 0
    for _ in range(400):
        p.adc = SeqADC(burst(6000, duty_for(16) / 65535, noise_mv=500, rng=rng))
        changes += p.poll()
    assert changes == 1 and p.state == "C"


def test_level_near_a_boundary_with_noise_stays_put():
    # 7.6 V (just inside B) with 0.3 V noise per reading: hysteresis and debouncing hold B.
    rng = random.Random(5)
    p = make_pilot()
    seen = set()
    for _ in range(300):
        p.adc = SeqADC(burst(7600, 1.0, noise_mv=300, rng=rng))
        p.poll()
        seen.add(p.state)
    assert seen == {None, "B"}  # None: before the first state is settled


def test_every_state_through_poll():
    p = make_pilot()
    p.offer(10)
    duty = duty_for(10) / 65535
    for state in ("A", "B", "C", "D", "B", "E", "A"):
        low = LEVELS[state] if state == "E" else -12000  # E: the pilot shorted, no PWM seen
        for _ in range(2):
            p.adc = SeqADC(burst(LEVELS[state], duty, noise_mv=100, low_mv=low))
            p.poll()
        assert p.state == state


def test_state_f_is_a_pilot_stuck_low():
    p = make_pilot()
    for _ in range(2):
        p.adc = SeqADC(burst(-12000, 1.0, noise_mv=100))
        p.poll()
    assert p.state == "F"


def test_missing_diode_is_an_error():
    p = make_pilot()
    p.offer(16)
    duty = duty_for(16) / 65535
    for _ in range(2):  # state C without the diode: the low phase is -6 V, not -12 V
        p.adc = SeqADC(burst(6000, duty, noise_mv=100, low_mv=-6000))
        p.poll()
    assert p.state == "E"
    for _ in range(2):  # with the PWM off there is no low phase to check
        p.offer(0)
        p.adc = SeqADC(burst(9000, 1.0, noise_mv=100))
        p.poll()
    assert p.state == "B"


def test_sample_takes_a_paced_burst():
    p = Pilot(FakePWM(), SeqADC(range(0, 65535, 1000)), CAL)
    import time

    t = time.perf_counter()
    assert p.sample() == 48
    assert time.perf_counter() - t >= 0.0011  # 48 readings 25 us apart: > one PWM period
    assert list(p._buf[:3]) == [0, 1000, 2000]
