# Wall clock for OCPP timestamps, set from the central system's currentTime (1.6 spec §4.2, §4.6).
# A board's RTC may start at its epoch after a power cut, so we keep an offset against time.time()
# instead of trusting the RTC, and convert dates ourselves: time.mktime's epoch differs by port.
import time

from .compat import MICROPYTHON, const, ticks_add, ticks_diff, ticks_ms

_DASH = const(45)
_COLON = const(58)

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


def _num(b, i, n):
    # Digits b[i:i+n] as an int, without slicing: every Heartbeat answer passes through here.
    v = 0
    for j in range(i, i + n):
        d = b[j] - 48
        if not 0 <= d <= 9:
            raise ValueError
        v = v * 10 + d
    return v


def parse(s):
    """ISO 8601 date-time (as OCPP sends it) -> UTC seconds since 1970, or None if malformed."""
    if not isinstance(s, str):
        return None
    # Read as bytes: indexing a str makes a one-character string, which MicroPython looks up
    # among all the interned strings (~0.3 us each); a byte is a plain int.
    b = memoryview(s) if MICROPYTHON else s.encode()
    n = len(b)
    try:
        if n < 19 or b[4] != _DASH or b[7] != _DASH or b[13] != _COLON or b[16] != _COLON:
            return None
        if b[10] != 84 and b[10] != 116 and b[10] != 32:  # T, t or a space
            return None
        secs = (
            _days_from_civil(_num(b, 0, 4), _num(b, 5, 2), _num(b, 8, 2)) * 86400
            + _num(b, 11, 2) * 3600
            + _num(b, 14, 2) * 60
            + _num(b, 17, 2)
        )
        i = 19
        if i < n and b[i] == 46:  # ".": a fraction of a second, skipped: we keep whole seconds
            i += 1
            while i < n and 48 <= b[i] <= 57:
                i += 1
        if i == n or (i + 1 == n and (b[i] == 90 or b[i] == 122)):  # nothing, Z or z
            return secs
        if i + 6 == n and (b[i] == 43 or b[i] == _DASH) and b[i + 3] == _COLON:  # +hh:mm
            off = _num(b, i + 1, 2) * 3600 + _num(b, i + 4, 2) * 60
            return secs - off if b[i] == 43 else secs + off
    except ValueError:
        pass
    return None


def fmt(secs):
    """UTC seconds since 1970 -> 'YYYY-MM-DDTHH:MM:SSZ'."""
    b = bytearray(20)
    fmt_into(b, 0, secs)
    return b.decode()


def fmt_into(b, i, secs):
    """fmt(secs) written into b[i:i + 20], allocating nothing -> i + 20."""
    secs = int(secs)
    z = secs // 86400
    rem = secs - z * 86400
    # Howard Hinnant's civil_from_days, inline: no tuple to hand back.
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    z = mp + (3 if mp < 10 else -9)  # the month
    _two(b, i + 5, z)
    _two(b, i + 8, doy - (153 * mp + 2) // 5 + 1)
    z = yoe + era * 400 + (z <= 2)  # the year
    _two(b, i, z // 100)
    _two(b, i + 2, z % 100)
    _two(b, i + 11, rem // 3600)
    _two(b, i + 14, rem // 60 % 60)
    _two(b, i + 17, rem % 60)
    b[i + 4] = b[i + 7] = _DASH
    b[i + 10] = 84  # T
    b[i + 13] = b[i + 16] = _COLON
    b[i + 19] = 90  # Z
    return i + 20


def _two(b, i, n):
    b[i] = 48 + n // 10
    b[i + 1] = 48 + n % 10


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
