"""clock.parse() and clock.fmt_into() as rewritten around civil(), daytime() and wsmask.dec()
(native on MicroPython, their Python versions here): the parser answers as the one before it
(clockref.py) for any text near a timestamp, fmt_into() writes what time.strftime() does, and
int_into() what str() does. mp_clock_check.py checks the same on MicroPython, natively."""
import random
import time

import clockref  # the parser before, beside this file
import mpcheck
import pytest
from hypothesis import given, strategies as st

from ocpp import clock, wsmask

SECS = st.integers(0, 253402300799)  # 1970-01-01 .. 9999-12-31
TAILS = st.sampled_from(("", "Z", "z", ".123Z", ".5", "+02:00", "-04:30", "+0200", "ZZ"))


@given(SECS)
def test_fmt_into_writes_what_strftime_does(secs):
    b = bytearray(b"<" * 24)
    assert clock.fmt_into(b, 2, secs) == 22
    want = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs)).encode()
    assert len(want) == 20 and b == b"<<" + want + b"<<"


def test_fmt_into_raises_when_it_does_not_fit():
    with pytest.raises(IndexError):
        clock.fmt_into(bytearray(19), 0, 0)


@given(SECS, TAILS, st.randoms(use_true_random=False))
def test_parse_answers_as_the_parser_before(secs, tail, rand):
    s = clock.fmt(secs)[:19] + tail
    assert clock.parse(s) == clockref.parse(s)
    for _ in range(5):
        t = clockref.near(rand, s)
        want = clockref.parse(t)
        assert clock.parse(t) == want, t
        b = t.encode()  # or its bytes, as a JSON text holds them
        assert clock.parse(b) == clock.parse(bytearray(b)) == want, t
        assert clock.parse(memoryview(b"[" + b + b"]")[1:-1]) == want, t


@given(SECS)
def test_parse_reads_what_fmt_writes(secs):
    assert clock.parse(clock.fmt(secs)) == secs


@pytest.mark.parametrize("x", [None, 1772600767, ["2026-03-04T05:06:07Z"], 1.5])
def test_parse_takes_text_only(x):
    assert clock.parse(x) is None


@given(st.integers(-(10**30), 10**30), st.integers(0, 4))
def test_int_into_writes_what_str_does(n, i):
    b = bytearray(40)
    assert b[i : wsmask.int_into(b, i, n)] == str(n).encode()
    with pytest.raises(IndexError):
        wsmask.int_into(bytearray(len(str(n)) - 1), 0, n)


@given(st.integers(0, 10**12), st.integers(0, 12), st.integers(-1, 14), st.integers(0, 14))
def test_dec_writes_the_last_w_digits(n, w, i, size):
    b = bytearray(size)
    text = str(n).zfill(w)[-w:] if w else str(n)
    if i < 0 or i + len(text) > size:
        with pytest.raises(IndexError):
            wsmask._pydec(b, i, n, w)
        assert b == bytearray(size)  # nothing written
    else:
        assert wsmask._pydec(b, i, n, w) == i + len(text) and b[i : i + len(text)] == text.encode()


def fields(t, shape):
    # The numbers in t's first len(shape) characters if they have the shape ("0": a digit, any
    # other character itself), else None.
    if len(t) < len(shape):
        return None
    for c, x in zip(shape, t):
        if x != c and not (c == "0" and x in "0123456789"):
            return None
    return [int(x) for x in t[: len(shape)].replace("-", " ").replace(":", " ").split()]


@given(st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99), st.randoms(
    use_true_random=False))
def test_civil_reads_a_date(y, m, d, rand):
    t = clockref.near(rand, "%04d-%02d-%02d" % (y, m, d))
    f = fields(t, "0000-00-00")
    want = clock._NODATE if f is None else clockref.days_from_civil(*f)
    assert clock._pycivil(t.encode(), 0) == want


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.randoms(
    use_true_random=False))
def test_daytime_reads_a_time(h, m, s, rand):
    t = clockref.near(rand, "%02d:%02d:%02d" % (h, m, s))
    f = fields(t, "00:00:00")
    want = -1 if f is None else f[0] * 3600 + f[1] * 60 + f[2]
    assert clock._pydaytime(t.encode(), 0) == want


def test_the_same_on_micropython():
    r = mpcheck.run("mp_clock_check.py", random.randint(0, 10**6))
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
