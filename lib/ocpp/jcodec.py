# A compact byte form of the transaction messages' payloads, for the journal on flash (see
# txqueue.py). Two forms, told apart by the first byte:
#  - JSON ("{"): compact JSON in which the key/value fragments the charger writes over and over
#    become one byte each, and a timestamp in our own "YYYY-MM-DDTHH:MM:SSZ" form five bytes.
#    JSON text never holds a raw byte below 0x20 (json.dumps escapes control characters on both
#    runtimes), so those bytes are free to serve as codes. Anything the table does not know stays
#    plain JSON text, so any payload round-trips.
#  - MeterValues (0x00): the common shape of a MeterValues payload, with its enumerations as
#    indexes: connectorId, then per meterValue its time (4 bytes) and per sampledValue a byte
#    saying which optional fields follow, their indexes, and the value text.
# A periodic energy sample shrinks from ~185 bytes of JSON to 18, which is what lets 100 offline
# transactions with their meter values fit in 64 KB.
import json
import struct

from . import clock
from .compat import MICROPYTHON, const
from .wsmask import same

_TS = const(0x1F)  # followed by 4 bytes: UTC seconds, big-endian

# Code n (1..30) stands for the n-th word below, each ended by a NUL: one bytes constant rather
# than thirty objects. A word that contains another must come before it (the reasons before
# '"reason":"'). Never reorder or remove words: journals on flash use these codes; new words go
# at the end (at most 30).
_WORDS = (
    b'"connectorId":\0'
    b'"idTag":"\0'
    b'"meterStart":\0'
    b'"meterStop":\0'
    b'"reason":"Local"\0'
    b'"reason":"PowerLoss"\0'
    b'"reason":"\0'
    b'"meterValue":[{\0'
    b'"sampledValue":[{\0'
    b'"value":"\0'
    b'"context":"Sample.Periodic"\0'
    b'"context":"Sample.Clock"\0'
    b'"context":"Transaction.Begin"\0'
    b'"context":"Transaction.End"\0'
    b'"measurand":"Energy.Active.Import.Register"\0'
    b'"measurand":"Power.Active.Import"\0'
    b'"measurand":"Current.Import"\0'
    b'"measurand":"Current.Offered"\0'
    b'"measurand":"Voltage"\0'
    b'"measurand":"SoC"\0'
    b'"unit":"Wh"\0'
    b'"unit":"W"\0'
    b'"unit":"A"\0'
    b'"unit":"V"\0'
    b'"phase":"\0'
    b'"timestamp":"\0'
    b'"transactionData":[{\0'
    b'"location":"Outlet"\0'
    b'"unit":"Percent"\0'
    b'"reservationId":\0'
)
_NWORDS = const(30)
_TSWORD = const(26)  # the code of '"timestamp":"'
_MONTH_DAYS = b"\x1f\x1c\x1f\x1e\x1f\x1e\x1f\x1f\x1e\x1f\x1e\x1f"
_MV_MAX = const(1024)  # pack(): a MeterValues form longer than this takes the JSON form


# sampledValue's optional enumerated fields (§7.33), in bit order. Never reorder: flash holds
# these indexes; a value outside them makes the payload go the JSON way.
FIELDS = (
    ("context", ("Interruption.Begin", "Interruption.End", "Other", "Sample.Clock",
                 "Sample.Periodic", "Transaction.Begin", "Transaction.End", "Trigger")),
    ("format", ("Raw", "SignedData")),
    ("measurand", ("Energy.Active.Import.Register", "Energy.Active.Export.Register",
                   "Energy.Reactive.Import.Register", "Energy.Reactive.Export.Register",
                   "Energy.Active.Import.Interval", "Energy.Active.Export.Interval",
                   "Energy.Reactive.Import.Interval", "Energy.Reactive.Export.Interval",
                   "Power.Active.Import", "Power.Active.Export", "Power.Offered",
                   "Power.Reactive.Import", "Power.Reactive.Export", "Power.Factor",
                   "Current.Import", "Current.Export", "Current.Offered", "Voltage",
                   "Frequency", "Temperature", "SoC", "RPM")),
    ("phase", ("L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")),
    ("location", ("Body", "Cable", "EV", "Inlet", "Outlet")),
    ("unit", ("Wh", "kWh", "varh", "kvarh", "W", "kW", "VA", "kVA", "var", "kvar", "A", "V",
              "Celsius", "Celcius", "Fahrenheit", "K", "Percent")),
)


def pack(payload):
    """dict -> bytes (pack_into() writes into a buffer of the caller's instead)."""
    buf = bytearray(_MV_MAX)
    try:
        n = _pack_meter_values(payload, buf, 0)
    except IndexError:
        n = None
    return bytes(buf[:n]) if n is not None else pack_json(payload)


def pack_into(payload, buf, i):
    """Write payload's byte form into buf from offset i, without allocating for the common
    MeterValues; returns where it ends, or -1 when it does not fit (then use pack())."""
    try:
        end = _pack_meter_values(payload, buf, i)
    except IndexError:  # the MeterValues form, but bigger than buf
        return -1
    if end is not None:
        return end
    return _coded_into(json.dumps(payload, separators=(",", ":")).encode(), buf, i)


def pack_json(payload):
    """dict -> bytes, in the JSON form (any payload)."""
    b = json.dumps(payload, separators=(",", ":")).encode()
    out = bytearray(len(b))  # the coded form is never longer
    return bytes(out[: _coded_into(b, out, 0)])


def _coded_into(b, buf, i):
    # The compact JSON b written into buf from i with its words as codes and its timestamps as
    # _TS + 4 bytes -> where it ends, or -1 when it does not fit. Every word starts with a
    # quote: the text between quotes is copied whole, and at each quote the words are compared
    # in place (wsmask.same). Slicing the thirty words out of _WORDS to look for them, and
    # replace(), were ~4 KB of garbage per Start or Stop.
    n = len(b)
    m = len(buf)
    mv = memoryview(b)
    j = 0
    while j < n:
        q = b.find(b'"', j)
        if q < 0:
            q = n
        if q > j:
            e = i + q - j
            if e > m:
                return -1
            buf[i:e] = mv[j:q]
            i = e
            if q == n:
                break
        w = _word_at(b, q)
        if w:
            c = w & 31
            j = w >> 5
            if c == _TSWORD:
                t = _stamp(b, j)
                if t is not None:  # exactly what clock.fmt() writes for that second
                    if i + 5 > m:
                        return -1
                    buf[i] = _TS
                    struct.pack_into(">I", buf, i + 1, t)
                    i += 5
                    j += 21
                    continue
        else:
            c = 0x22  # a quote that starts no word
            j = q + 1
        if i >= m:
            return -1
        buf[i] = c
        i += 1
    return i


def _word_at(b, j):
    # The first word of _WORDS at b[j:] (b[j] is a quote) -> its code | where it ends in b << 5;
    # 0 when none. Only the words that start as b[j:j+2] does are compared: _WORDS.find() finds
    # them, in table order, in C. (A Python loop over all thirty was ~30k instructions a quote
    # on MicroPython, most of what a Start or Stop cost to journal.)
    if j + 1 >= len(b) or not 97 <= b[j + 1] <= 122:  # every word goes on with a-z
        return 0  # (the quote that closes a string, mostly: no search)
    two = b[j : j + 2]
    k = _WORDS.find(two)
    while k >= 0:
        e = _WORDS.find(b"\0", k) - k  # its length
        if (k == 0 or _WORDS[k - 1] == 0) and same(b, j, _WORDS, k, e):
            return _WORDS.count(b"\0", 0, k) + 1 | (j + e) << 5
        k = _WORDS.find(two, k + 1)  # inside a word, or not all of it: the next one
    return 0


def _stamp(b, i):
    # The UTC seconds of the 20 characters at b[i:] if a closing quote follows them, else None.
    if b[i + 20 : i + 21] != b'"':
        return None
    try:
        return _secs(b[i : i + 20].decode())
    except UnicodeError:
        return None


def _secs(s):
    # The UTC seconds of s if it is exactly what clock.fmt() writes for them
    # ("YYYY-MM-DDTHH:MM:SSZ"), else None. Checked field by field: formatting the time again to
    # compare would allocate for every sample. parse() checks the digits and separators, but
    # takes 2026-02-30 for 2026-03-02 and 24:00 for 00:00 the next day. (Read as bytes: a
    # character of a str is a string MicroPython looks up among the interned ones.)
    if not isinstance(s, str) or len(s) != 20:
        return None
    t = clock.parse(s)
    if t is None or t < 0 or t > 0xFFFFFFFF:
        return None
    s = memoryview(s) if MICROPYTHON else s.encode()
    if s[10] != 84 or s[19] != 90 or _n2(s, 11) > 23 or _n2(s, 14) > 59 or _n2(s, 17) > 59:
        return None  # not T and Z, or a time fmt() never writes
    m = _n2(s, 5)
    if not 1 <= m <= 12:
        return None
    y = _n2(s, 0) * 100 + _n2(s, 2)
    y = m == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)  # a leap day may be
    return t if 1 <= _n2(s, 8) <= _MONTH_DAYS[m - 1] + y else None


def _n2(b, i):
    # The two digits at b[i] (parse() has checked that they are digits).
    return (b[i] - 48) * 10 + b[i + 1] - 48


def unpack(b):
    """bytes (or a memoryview of them) -> dict; ValueError when they are not a payload."""
    if len(b) and b[0] == 0:
        return _unpack_meter_values(b)
    parts = []
    n = len(b)
    start = i = 0
    while i < n:
        c = b[i]
        if c >= 0x20:
            i += 1
            continue
        if start < i:
            parts.append(bytes(b[start:i]))
        if c == _TS:
            if i + 5 > n:
                raise ValueError("truncated timestamp")
            t = struct.unpack(">I", bytes(b[i + 1 : i + 5]))[0]
            parts.append(b'"timestamp":"')
            parts.append(clock.fmt(t).encode())
            parts.append(b'"')
            i += 5
        elif c == 0 or c > _NWORDS:
            raise ValueError("bad code")
        else:
            parts.append(_word(c))
            i += 1
        start = i
    if start < n:
        parts.append(bytes(b[start:n]))
    d = json.loads(b"".join(parts))
    if not isinstance(d, dict):
        raise ValueError("not an object")
    return d


def _word(code):
    # The word that code (1.._NWORDS) stands for.
    i = 0
    for _ in range(code - 1):
        i = _WORDS.find(b"\0", i) + 1
    return _WORDS[i : _WORDS.find(b"\0", i)]


def _pack_meter_values(p, buf, i):
    # The MeterValues form written into buf from i -> where it ends, or None when p has another
    # shape (then JSON it is); IndexError when buf is too small. The only allocations are the
    # value texts' bytes and the timestamp check.
    if len(p) != 2 or not isinstance(p.get("connectorId"), int):
        return None
    mvs = p.get("meterValue")
    c = p["connectorId"]
    if not isinstance(mvs, list) or not 0 < len(mvs) < 256 or not 0 <= c < 256:
        return None
    buf[i + 2] = len(mvs)  # the furthest first: IndexError before anything is written
    buf[i] = 0
    buf[i + 1] = c
    i += 3
    for mv in mvs:
        svs = mv.get("sampledValue") if isinstance(mv, dict) and len(mv) == 2 else None
        t = _secs(mv.get("timestamp")) if svs is not None else None
        if t is None or not isinstance(svs, list) or not 0 < len(svs) < 256:
            return None
        _room(buf, i, 5)
        struct.pack_into(">IB", buf, i, t, len(svs))
        i += 5
        for sv in svs:
            v = sv.get("value") if isinstance(sv, dict) else None
            if not isinstance(v, str):
                return None
            at = i
            i += 1
            bits = 0
            n = 1
            for k in range(len(FIELDS)):
                name, values = FIELDS[k]
                x = sv.get(name)
                if x is None:
                    continue
                try:
                    buf[i] = values.index(x)
                except ValueError:
                    return None
                bits |= 1 << k
                n += 1
                i += 1
            v = v.encode()
            if n != len(sv) or len(v) > 255:
                return None  # a field we do not know, or a null one
            buf[at] = bits
            _room(buf, i, 1 + len(v))
            buf[i] = len(v)
            buf[i + 1 : i + 1 + len(v)] = v
            i += 1 + len(v)
    return i


def _room(buf, i, n):
    # Slice assignment past the end would grow buf instead of failing.
    if i + n > len(buf):
        raise IndexError


def _unpack_meter_values(b):
    try:
        mvs = []
        i = 3
        for _ in range(b[2]):
            if i + 5 > len(b):
                raise ValueError("truncated")
            t, n = struct.unpack(">IB", bytes(b[i : i + 5]))
            i += 5
            svs = []
            for _ in range(n):
                bits = b[i]
                i += 1
                sv = {}
                for k in range(len(FIELDS)):
                    if bits & 1 << k:
                        sv[FIELDS[k][0]] = FIELDS[k][1][b[i]]
                        i += 1
                sv["value"] = bytes(b[i + 1 : i + 1 + b[i]]).decode()
                i += 1 + b[i]
                svs.append(sv)
            mvs.append({"timestamp": clock.fmt(t), "sampledValue": svs})
        if i != len(b):
            raise ValueError("trailing bytes")
        return {"connectorId": b[1], "meterValue": mvs}
    except (IndexError, UnicodeError) as e:
        raise ValueError(repr(e))


# ---- the MeterValues form made straight from the meter (metering.sample_into()); the JSON is
# written from it by mvjson.py ------------------------------------------------------------


def codes(m, phase, unit):
    """The bits and indexes of a sampled value's measurand, phase and unit in the MeterValues
    form (the context is added per sample: context_code()) -> an int: the bits in its low
    byte, then each index + 1 in a byte of its own, so that the int ends where they do (at
    most 30 bits: a small int, nothing on the heap, on 32-bit ports too; metering keeps one per
    measurand for the length of a transaction); or None when one of them is not in its table
    (then such a sample takes the dict way)."""
    bits = out = 0
    shift = 8
    for k, x in ((2, m), (3, phase), (5, unit)):
        if x is not None:
            values = FIELDS[k][1]
            if x not in values:
                return None
            bits |= 1 << k
            out |= (values.index(x) + 1) << shift
            shift += 8
    return out | bits


def context_code(context):
    """The index of a reading context (§7.33) in the MeterValues form, or -1."""
    values = FIELDS[0][1]
    return values.index(context) if context in values else -1
