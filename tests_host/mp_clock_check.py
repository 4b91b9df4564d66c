# Run by test_clock.py on the MicroPython unix port, where wsmask.dec() and clock's civil() and
# daytime() are the native ones (_xor.py, compiled from source): random numbers and texts give
# what the Python versions give, int_into() writes what str() does, clock.fmt() what
# time.gmtime() says (the unix port counts from 1970), and clock.parse() answers as the parser
# before it (clockref.py).
# argv[1]: a seed. Prints OK.
import random
import sys
import time

from ocpp import _xor, clock, wsmask

import clockref  # beside this script

random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
assert wsmask.dec is _xor.dec and clock.civil is _xor.civil and clock.daytime is _xor.daytime


def outcome(f, *args):
    # f(*args) and the buffer it wrote, or IndexError.
    b = args[0]
    try:
        r = f(*args)
    except IndexError:
        return "IndexError", bytes(b)
    return r, bytes(b)


def number():
    k = random.randint(0, 3)
    if k == 0:
        return random.randint(0, 9)
    if k == 1:
        return random.randint(0, 99999)
    return random.randint(0, 0x3FFFFFFF)


for _ in range(3000):
    n, w, size = number(), random.randint(0, 10), random.randint(0, 14)
    i = random.randint(-1, size)
    a = outcome(_xor.dec, bytearray(size), i, n, w)
    b = outcome(wsmask._pydec, bytearray(size), i, n, w)
    assert a == b, (n, w, size, i, a, b)
    if w == 0 and a[0] != "IndexError":
        assert a[1][i : a[0]] == str(n).encode(), (n, i, a)

for _ in range(3000):
    n = number()
    if random.randint(0, 3) == 0:  # past a machine word: int_into()'s Python way
        n = n * 10 ** random.randint(1, 20) + number()
    if random.randint(0, 1):
        n = -n
    b = bytearray(40)
    i = random.randint(0, 5)
    assert b[i : wsmask.int_into(b, i, n)] == str(n).encode(), n
    try:
        wsmask.int_into(bytearray(len(str(n)) - 1), 0, n)
        raise AssertionError("no IndexError: %d" % n)
    except IndexError:
        pass

for _ in range(5000):
    t = clockref.near(random, "%04d-%02d-%02d" % (random.randint(0, 9999), random.randint(0, 99),
                                               random.randint(0, 99)))
    i = random.randint(-1, 2)
    t = "x" * max(i, 0) + t
    for buf in (t, t.encode(), bytearray(t.encode()), memoryview(t.encode())):
        a, b = _xor.civil(buf, i), clock._pycivil(memoryview(t.encode()), i)
        assert a == b, (t, i, a, b)
    t = clockref.near(random, "%02d:%02d:%02d" % (random.randint(0, 99), random.randint(0, 99),
                                               random.randint(0, 99)))
    t = "x" * max(i, 0) + t
    for buf in (t, t.encode(), bytearray(t.encode()), memoryview(t.encode())):
        a, b = _xor.daytime(buf, i), clock._pydaytime(memoryview(t.encode()), i)
        assert a == b, (t, i, a, b)

for _ in range(2000):
    secs = random.randint(0, 253402300799)
    s = clock.fmt(secs)
    g = time.gmtime(secs) if secs < 2**31 else None  # (the port's own range)
    if g is not None:
        assert s == "%04d-%02d-%02dT%02d:%02d:%02dZ" % g[:6], (secs, s)
    assert clock.parse(s) == secs == clockref.parse(s), (secs, s)
    b = bytearray(b"<" * 24)
    assert clock.fmt_into(b, 2, secs) == 22 and b == b"<<" + s.encode() + b"<<", secs
    for _ in range(5):
        t = clockref.near(random, s)
        want = clockref.parse(t)
        assert clock.parse(t) == clock.parse(t.encode()) == want, t
        assert clock.parse(memoryview(b"[" + t.encode() + b"]")[1:-1]) == want, t
    t = clockref.near(random, s[:19] + random.choice(("", "Z", ".5Z", "+01:30", "-00:45")))
    assert clock.parse(t) == clockref.parse(t), t

print("OK")
