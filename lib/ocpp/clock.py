# Wall clock for OCPP timestamps, set from the central system's currentTime (1.6 spec §4.2, §4.6).
# A board's RTC may start at its epoch after a power cut, so we keep an offset against time.time()
# instead of trusting the RTC, and convert dates ourselves: time.mktime's epoch differs by port.
import time

from .compat import MICROPYTHON, const, ticks_add, ticks_diff, ticks_ms
from .wsmask import dec

try:
    from ._xor import civil, daytime  # native; in Python below where they do not import
except Exception:
    civil = daytime = None

_DASH = const(45)
_COLON = const(58)
_NODATE = const(-0x40000000)  # civil(): no date there

_offset = 0  # seconds to add to time.time() to get UTC seconds since 1970
_base = None  # ticks_ms() when the second _secs of time.time() began (see _rtc())
_secs = 0
synced = False


def _days_from_civil(y, m, d):
    # Howard Hinnant's days_from_civil: proleptic Gregorian date -> days since 1970-01-01.
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse(s):
    """ISO 8601 date-time (as OCPP sends it) -> UTC seconds since 1970, or None if malformed.
    s is a str, or its UTF-8 bytes (bytes, bytearray or a memoryview of them: a JSON string
    read where it lies, with no str made for it)."""
    # Read as bytes: indexing a str makes a one-character string, which MicroPython looks up
    # among all the interned strings (~0.3 us each); a byte is a plain int. The date and the
    # time are read by civil() and daytime(), native code where it imports: read here, field
    # by field, they were two thirds of what a Heartbeat's answer cost.
    if isinstance(s, str):
        s = memoryview(s) if MICROPYTHON else s.encode()
    elif isinstance(s, (bytes, bytearray, memoryview)):
        s = s if MICROPYTHON else bytes(s)  # (_digits() wants bytes on CPython)
    else:
        return None
    n = len(s)
    if n < 19 or (s[10] != 84 and s[10] != 116 and s[10] != 32):  # T, t or a space
        return None
    secs = civil(s, 0)
    t = daytime(s, 11)
    if secs == _NODATE or t < 0:
        return None
    secs = secs * 86400 + t
    i = 19
    if i < n and s[i] == 46:  # ".": a fraction of a second, skipped: we keep whole seconds
        i += 1
        while i < n and 48 <= s[i] <= 57:
            i += 1
    if i == n or (i + 1 == n and (s[i] == 90 or s[i] == 122)):  # nothing, Z or z
        return secs
    if i + 6 == n and (s[i] == 43 or s[i] == _DASH) and s[i + 3] == _COLON:  # +hh:mm
        t = _digits(s, i + 1, 2)
        m = _digits(s, i + 4, 2)
        if t < 0 or m < 0:
            return None
        t = (t * 60 + m) * 60
        return secs - t if s[i] == 43 else secs + t
    return None


def _pycivil(b, i):
    # civil() of _xor.py: the date 'YYYY-MM-DD' at b[i:i+10] -> its days since 1970-01-01 (the
    # month and day not range-checked), or _NODATE when it is not one there.
    if i < 0 or i + 10 > len(b) or b[i + 4] != _DASH or b[i + 7] != _DASH:
        return _NODATE
    y, m, d = _digits(b, i, 4), _digits(b, i + 5, 2), _digits(b, i + 8, 2)
    if y < 0 or m < 0 or d < 0:
        return _NODATE
    return _days_from_civil(y, m, d)


def _pydaytime(b, i):
    # daytime() of _xor.py: the time 'hh:mm:ss' at b[i:i+8] -> its seconds since midnight (the
    # fields not range-checked), or -1 when it is not one there.
    if i < 0 or i + 8 > len(b) or b[i + 2] != _COLON or b[i + 5] != _COLON:
        return -1
    h, m, s = _digits(b, i, 2), _digits(b, i + 3, 2), _digits(b, i + 6, 2)
    if h < 0 or m < 0 or s < 0:
        return -1
    return h * 3600 + m * 60 + s


def _digits(b, i, n):
    # The number the n ASCII digits at b[i:i+n] write, or -1 when one is not a digit.
    if not MICROPYTHON:  # in C (b is bytes there)
        t = b[i : i + n]
        return int(t) if t.isdigit() else -1
    v = 0
    for k in range(i, i + n):
        c = b[k] - 48
        if not 0 <= c <= 9:
            return -1
        v = v * 10 + c
    return v


if civil is None:
    civil, daytime = _pycivil, _pydaytime


def fmt(secs):
    """UTC seconds since 1970 -> 'YYYY-MM-DDTHH:MM:SSZ'."""
    b = bytearray(20)
    fmt_into(b, 0, secs)
    return b.decode()


def fmt_into(b, i, secs):
    """fmt(secs) written into b[i:i + 20], allocating nothing -> i + 20."""
    # Written by dec(), native where it imports, a few fields at a time: the time as HH0MM0SS,
    # the month and day as MM0DD, the zeros then overwritten by the separators. (In two
    # functions: with all the locals in one, its frame would go on the heap at every call.)
    secs = int(secs)
    z = secs // 86400
    secs -= z * 86400  # the second of the day
    dec(b, i + 11, secs // 3600 * 1000000 + secs // 60 % 60 * 1000 + secs % 60, 8)
    _date_into(b, i, z)
    b[i + 4] = b[i + 7] = _DASH
    b[i + 10] = 84  # T
    b[i + 13] = b[i + 16] = _COLON
    b[i + 19] = 90  # Z
    return i + 20


def _date_into(b, i, z):
    # The date of day z (days since 1970-01-01) as YYYY0MM0DD into b[i:i + 10]: Howard
    # Hinnant's civil_from_days, inline (no tuple to hand back).
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    z -= era * 146097  # the day of the era
    yoe = (z - z // 1460 + z // 36524 - z // 146096) // 365
    z -= 365 * yoe + yoe // 4 - yoe // 100  # the day of the year, from March 1st
    mp = (5 * z + 2) // 153  # the month, counted from March
    z -= (153 * mp + 2) // 5 - 1  # the day of the month
    yoe += era * 400 + (mp >= 10)  # the year: January and February are in the next one
    dec(b, i, yoe, 4)
    dec(b, i + 5, (mp + 3 if mp < 10 else mp - 9) * 1000 + z, 5)


def _rtc():
    # time.time() in whole seconds. On the unix port it is a float, 32 bytes of heap a call, so
    # it is read once a minute and the seconds in between are counted with ticks_ms(); the
    # count never runs ahead of the RTC, so a re-read never steps back.
    global _base, _secs
    t = ticks_ms()
    if _base is None or not 0 <= ticks_diff(t, _base) < 60000:
        f = time.time()
        _secs = int(f)
        _base = ticks_add(t, -int((f - _secs) * 1000))
    return _secs + ticks_diff(t, _base) // 1000


def now():
    return _rtc() + _offset


def now_iso():
    return fmt(now())


def set_from(s):
    """Set the clock from a currentTime string; returns False when it cannot be parsed."""
    global _offset, synced
    t = parse(s)
    if t is None:
        return False
    _offset = t - _rtc()
    synced = True
    return True
