"""clock.parse() and clock.fmt_into() as rewritten around wsmask's digits() and dec() (native on
MicroPython, their Python versions here): the parser answers as the one before it (clockref.py)
for any text near a timestamp, fmt_into() writes what time.strftime() does, and int_into() what
str() does. mp_clock_check.py checks the same on MicroPython with the native functions."""
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
        assert clock.parse(t) == clockref.parse(t), t


@given(SECS)
def test_parse_reads_what_fmt_writes(secs):
    assert clock.parse(clock.fmt(secs)) == secs


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


@given(st.text("0123456789x/: ", max_size=8), st.integers(-1, 9), st.integers(-1, 5))
def test_digits_reads_digits_only(t, i, n):
    part = t[i : i + n]
    if i < 0 or n < 0 or i + n > len(t):
        want = -1  # past either end
    else:
        want = int(part) if part.isdigit() else 0 if n == 0 else -1
    assert wsmask._pydigits(t.encode(), i, n) == want


def test_the_same_on_micropython():
    r = mpcheck.run("mp_clock_check.py", random.randint(0, 10**6))
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
