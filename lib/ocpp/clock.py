# Wall clock for OCPP timestamps, set from the central system's currentTime (1.6 spec §4.2, §4.6).
# A board's RTC may start at its epoch after a power cut, so we keep an offset against time.time()
# instead of trusting the RTC, and convert dates ourselves: time.mktime's epoch differs by port.
import time

_offset = 0  # seconds to add to time.time() to get UTC seconds since 1970
synced = False


def _days_from_civil(y, m, d):
    # Howard Hinnant's days_from_civil: proleptic Gregorian date -> days since 1970-01-01.
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def _num(s, i, n):
    # Digits s[i:i+n] as an int, without slicing: every Heartbeat answer passes through here.
    v = 0
    for j in range(i, i + n):
        d = ord(s[j]) - 48
        if not 0 <= d <= 9:
            raise ValueError
        v = v * 10 + d
    return v


def parse(s):
    """ISO 8601 date-time (as OCPP sends it) -> UTC seconds since 1970, or None if malformed."""
    try:
        if len(s) < 19 or s[4] != "-" or s[7] != "-" or s[10] not in "Tt " or s[13] != ":":
            return None
        secs = (
            _days_from_civil(_num(s, 0, 4), _num(s, 5, 2), _num(s, 8, 2)) * 86400
            + _num(s, 11, 2) * 3600
            + _num(s, 14, 2) * 60
            + _num(s, 17, 2)
        )
        i = 19
        if i < len(s) and s[i] == ".":  # fraction of a second: skipped, we keep whole seconds
            i += 1
            while i < len(s) and "0" <= s[i] <= "9":
                i += 1
        left = len(s) - i
        if left == 0 or (left == 1 and s[i] in "Zz"):
            return secs
        if left == 6 and s[i] in "+-" and s[i + 3] == ":":
            off = _num(s, i + 1, 2) * 3600 + _num(s, i + 4, 2) * 60
            return secs - off if s[i] == "+" else secs + off
    except (ValueError, IndexError):
        pass
    return None


def fmt(secs):
    """UTC seconds since 1970 -> 'YYYY-MM-DDTHH:MM:SSZ'."""
    secs = int(secs)
    days, rem = divmod(secs, 86400)
    y, m, d = _civil_from_days(days)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, m, d, rem // 3600, rem // 60 % 60, rem % 60)


def now():
    return int(time.time()) + _offset


def now_iso():
    return fmt(now())


def set_from(s):
    """Set the clock from a currentTime string; returns False when it cannot be parsed."""
    global _offset, synced
    t = parse(s)
    if t is None:
        return False
    _offset = t - int(time.time())
    synced = True
    return True
