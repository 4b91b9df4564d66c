# The byte work of the WebSocket's buffers (wsframe.py): frame headers, masking (RFC 6455 5.3)
# and moving bytes down a buffer; and of the JSON written into and read from them in place
# (rpc.py, mvjson.py), and of timestamps (clock.py). Native code (_xor.py) where it imports,
# which allocates nothing; Python otherwise (CPython, or a build without the native module).
from .compat import MICROPYTHON

try:
    from ._xor import dec, frame, mask as _xmask, move as _xmove, same as _xsame, text as _xtext
except Exception:  # the Python versions below (frame(tx, op, src, k) -> frame length)
    dec = frame = _xmask = _xmove = _xsame = _xtext = None


def move(buf, d, s, n):
    # buf[d:d+n] = buf[s:s+n] for d < s, the regions overlapping (slice assignment of a
    # memoryview onto itself is a memcpy on MicroPython).
    if _xmove is not None:
        _xmove(buf, d, s, n)
    else:
        buf[d : d + n] = bytes(buf[s : s + n])


def head(tx, op, n, k):
    # The header of a frame of n payload bytes (FIN set, masked) into tx, with the key at
    # tx[k:k+4] -> the header's length.
    tx[0] = 0x80 | op
    if n < 126:
        tx[1] = 0x80 | n
        i = 2
    else:
        i = 4 if n < 65536 else 10
        tx[1] = 0xFE if i == 4 else 0xFF
        j = i
        while j > 2:  # the length, big-endian, backwards
            j -= 1
            tx[j] = n & 0xFF
            n >>= 8
    tx[i : i + 4] = tx[k : k + 4]
    return i + 4


def chunk(tx, i, src, pos, n, k):
    """The bytes to write for src[pos:pos+n] masked with the key at tx[k:k+4], behind the first
    i bytes of tx (the header; 0 after a frame's first chunk). Chunks start at multiples of 4,
    so the key starts at its first byte in each."""
    if _xmask is not None:
        _xmask(tx, i, src, pos, n, tx, k)
        return tx[: i + n]
    # XOR as big ints: no per-byte Python loop. The header rides in the same int, so a small
    # message is one write (one TLS record).
    width = (n + 3) & ~3
    m = int.from_bytes(bytes(tx[k : k + 4]) * (width >> 2), "big")
    x = int.from_bytes(memoryview(src)[pos : pos + n], "big") ^ (m >> ((width - n) << 3))
    if i:
        x |= int.from_bytes(tx[:i], "big") << (n << 3)
    return x.to_bytes(i + n, "big")


# same() and text() check the bounds the native code does not, and leave the Python loops to
# functions of their own: with those locals too, MicroPython would allocate their frames on the
# heap at every call (more than 11 words of locals and stack), and they run for every message.


def same(a, i, b, j, n):
    # a[i:i+n] == b[j:j+n], allocating nothing.
    if i + n > len(a) or j + n > len(b):
        return False
    return (_pysame if _xsame is None else _xsame)(a, i, b, j, n)


def _pysame(a, i, b, j, n):
    if not MICROPYTHON:
        return a[i : i + n] == b[j : j + n]
    for k in range(n):
        if a[i + k] != b[j + k]:
            return False
    return True


def text(dst, d, src, s, n):
    # dst[d:d+n] = src[s:s+n] if no byte needs escaping in a JSON string -> d + n, else -1.
    # IndexError when it does not fit.
    if d + n > len(dst) or s + n > len(src):
        raise IndexError
    return (_pytext if _xtext is None else _xtext)(dst, d, src, s, n)


def _pytext(dst, d, src, s, n):
    for k in range(n):
        c = src[s + k]
        if c == 34 or c == 92 or c < 32:
            return -1
        dst[d + k] = c
    return d + n


def int_into(b, i, n):
    """The decimal digits of the int n into b from i -> where they end. IndexError when they
    do not fit."""
    if n < 0:
        b[i] = 45  # -
        i += 1
        n = -n
    # A small int on every port, 32-bit ones too, is a machine word for the native dec().
    return dec(b, i, n, 0) if n < 0x40000000 else _pydec(b, i, n, 0)


def _pydec(b, i, n, w):
    # dec(): n (>= 0) in decimal into b from i, in w digits (its last w, zero-padded), or in as
    # many as it has when w is 0 -> where they end. IndexError when b ends first.
    if not MICROPYTHON:  # formatting in C beats a loop per digit; allocation is no matter
        t = b"%0*d" % (w, n)
        if len(t) > w > 0:
            t = t[-w:]
        e = i + len(t)
        if i < 0 or e > len(b):
            raise IndexError
        b[i:e] = t
        return e
    e = i + w
    if not w:
        t = n
        e = i + 1
        while t >= 10:  # count the digits first, then write them from the last
            t //= 10
            e += 1
    if i < 0 or e > len(b):
        raise IndexError
    for k in range(e - 1, i - 1, -1):
        b[k] = 48 + n % 10
        n //= 10
    return e


# dec() is called straight (int_into(), clock.py): the native one where it imports.
if dec is None:
    dec = _pydec
