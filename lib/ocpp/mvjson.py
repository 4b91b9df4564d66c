# MeterValues JSON written straight from jcodec's MeterValues form into a buffer (rpc's CALL
# frame), with no dict, list or string on the way: how the transaction queue sends the samples
# it journaled in that form (txqueue.py). A sampled value's fields after its value are the same
# few combinations sample after sample: their text is made once and remembered (_frag).
from . import clock
from .jcodec import FIELDS
from .wsmask import int_into, text

_frags = None  # a sampled value's shape -> the JSON text after its value: see _frag()


def meter_values_json(p, k, txid, b, i):
    """The JSON text of the MeterValues payload in jcodec's MeterValues form at p[k:] (p[k] is
    0) with transactionId txid, written into b from i -> where it ends, or -1 when it does not
    fit. Allocates nothing once the shapes of its sampled values were seen."""
    try:
        i = _put(b, i, b'{"connectorId":')
        i = int_into(b, i, p[k + 1])
        i = _put(b, i, b',"transactionId":')
        i = int_into(b, i, txid)
        i = _put(b, i, b',"meterValue":[')
        count = p[k + 2]
        k += 3
        for n in range(count):
            i = _put(b, i, b',{"timestamp":"' if n else b'{"timestamp":"')
            i = clock.fmt_into(b, i, p[k] << 24 | p[k + 1] << 16 | p[k + 2] << 8 | p[k + 3])
            i = _put(b, i, b'","sampledValue":[')
            k += 5
            for j in range(p[k - 1]):
                i = _put(b, i, b',{"value":"' if j else b'{"value":"')
                frag = _frag(p, k)
                bits = p[k]
                k += 1
                while bits:  # past its indexes
                    k += bits & 1
                    bits >>= 1
                n = p[k]
                e = text(b, i, p, k + 1, n)  # the value text, when it needs no escapes
                i = _escaped(b, i, p, k + 1, n) if e < 0 else e
                k += 1 + n
                i = _put(b, i, frag)
            i = _put(b, i, b"]}")
        return _put(b, i, b"]}")
    except IndexError:
        return -1


def _frag(p, k):
    # The JSON text that follows the value of the sampled value at p[k] (its bits, then its
    # indexes): '","context":"Sample.Clock",...}'. Made once per shape (the bits and indexes
    # folded into an int) and remembered.
    global _frags
    if _frags is None:
        _frags = {}
    bits = shape = p[k]
    j = k
    f = 1
    while f <= bits:
        if bits & f:
            j += 1
            shape = shape << 5 | p[j]
        f <<= 1
    frag = _frags.get(shape)
    if frag is None:
        frag = '"'
        for f in range(len(FIELDS)):
            if bits & 1 << f:
                k += 1
                frag += ',"%s":"%s"' % (FIELDS[f][0], FIELDS[f][1][p[k]])
        frag = (frag + "}").encode()
        if len(_frags) >= 32:  # more shapes than a charger has measurands: start over
            _frags.clear()
        _frags[shape] = frag
    return frag


def forget():
    """Drop the remembered shapes (metering.rest(): no transaction runs)."""
    global _frags
    _frags = None


def _put(b, i, x):
    # x (bytes) into b at i -> where it ends.
    j = i + len(x)
    if j > len(b):  # (slice assignment past the end would grow b)
        raise IndexError
    b[i:j] = x
    return j


def _escaped(b, i, p, k, n):
    # The value text p[k:k + n] into b at i as the inside of a JSON string, escaped -> where it
    # ends. (Our meter's values are digits: text() copies those.)
    for k in range(k, k + n):
        c = p[k]
        if c == 34 or c == 92:  # " and \
            b[i] = 92
            i += 1
        elif c < 32:
            i = _put(b, i, b"\\u00")
            b[i] = 48 + (c >> 4)
            c = b"0123456789abcdef"[c & 15]
            i += 1
        b[i] = c
        i += 1
    return i
