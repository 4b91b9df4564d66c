# The timestamp parser as it was before clock.parse read its fields with wsmask.digits (one
# Python loop per field): what the new one must answer for any text. Written once for
# test_clock.py (CPython) and mp_clock_check.py (MicroPython).


def days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _num(b, i, n):
    v = 0
    for j in range(i, i + n):
        d = b[j] - 48
        if not 0 <= d <= 9:
            raise ValueError
        v = v * 10 + d
    return v


def parse(s):
    if not isinstance(s, str):
        return None
    b = s.encode()
    n = len(b)
    try:
        if n < 19 or b[4] != 45 or b[7] != 45 or b[13] != 58 or b[16] != 58:
            return None
        if b[10] != 84 and b[10] != 116 and b[10] != 32:
            return None
        secs = (
            days_from_civil(_num(b, 0, 4), _num(b, 5, 2), _num(b, 8, 2)) * 86400
            + _num(b, 11, 2) * 3600
            + _num(b, 14, 2) * 60
            + _num(b, 17, 2)
        )
        i = 19
        if i < n and b[i] == 46:
            i += 1
            while i < n and 48 <= b[i] <= 57:
                i += 1
        if i == n or (i + 1 == n and (b[i] == 90 or b[i] == 122)):
            return secs
        if i + 6 == n and (b[i] == 43 or b[i] == 45) and b[i + 3] == 58:
            off = _num(b, i + 1, 2) * 3600 + _num(b, i + 4, 2) * 60
            return secs - off if b[i] == 43 else secs + off
    except ValueError:
        pass
    return None


# Texts near a timestamp: what a parser must take or refuse.
ALPHABET = "0123456789-:T t Z z.+/"


def near(rand, s):
    # s with a few characters replaced, dropped or added (rand: random.Random-like).
    s = list(s)
    for _ in range(rand.randint(0, 3)):
        k = rand.randint(0, 2)
        i = rand.randint(0, len(s))
        c = ALPHABET[rand.randint(0, len(ALPHABET) - 1)]
        if k == 0 and i < len(s):
            s[i] = c
        elif k == 1 and i < len(s):
            del s[i]
        else:
            s.insert(i, c)
    return "".join(s)
