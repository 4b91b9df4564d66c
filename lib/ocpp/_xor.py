# Byte work in native code, without allocating: WebSocket frames, JSON and timestamps read and
# written in place. Viper compiles to machine code, so this file is built with
# `mpy-cross -march=...` for the target (x64 for the unix port, xtensawin for ESP32, armv6m for
# the Pico W); wsmask.py and jscan.py fall back to Python when it cannot be imported (CPython, or
# a build without it).
import micropython


@micropython.viper
def mask(dst: ptr8, d: int, src: ptr8, s: int, n: int, key: ptr8, k: int):
    # dst[d:d+n] = src[s:s+n] XOR the 4-byte key at key[k:k+4] (RFC 6455 5.3): copy and mask in
    # one pass, from any buffer (bytes, str, memoryview) into the send buffer.
    i = 0
    while i < n:
        dst[d + i] = src[s + i] ^ key[k + (i & 3)]
        i += 1


@micropython.viper
def move(buf: ptr8, d: int, s: int, n: int):
    # buf[d:d+n] = buf[s:s+n] for d < s, the regions may overlap (slice assignment does memcpy).
    i = 0
    while i < n:
        buf[d + i] = buf[s + i]
        i += 1


@micropython.viper
def frame(tx: ptr8, op: int, src, k: int) -> int:
    # A whole frame of at most 65535 payload bytes into tx: the header (FIN, opcode, masked
    # length, key) and src masked with the 4-byte key at tx[k:k+4] -> the frame's length.
    n = int(len(src))
    p = ptr8(src)
    tx[0] = 0x80 | op
    i = 2
    if n < 126:
        tx[1] = 0x80 | n
    else:
        tx[1] = 0xFE
        tx[2] = n >> 8
        tx[3] = n & 0xFF
        i = 4
    j = 0
    while j < 4:
        tx[i + j] = tx[k + j]
        j += 1
    i += 4
    j = 0
    while j < n:
        tx[i + j] = p[j] ^ tx[k + (j & 3)]
        j += 1
    return i + n


@micropython.viper
def same(a: ptr8, i: int, b: ptr8, j: int, n: int) -> bool:
    # a[i:i+n] == b[j:j+n], without the slices: rpc compares an answer's id in place.
    k = 0
    while k < n:
        if a[i + k] != b[j + k]:
            return False
        k += 1
    return True


@micropython.viper
def text(dst: ptr8, d: int, src: ptr8, s: int, n: int) -> int:
    # dst[d:d+n] = src[s:s+n] when none of those bytes needs escaping inside a JSON string
    # (", \, control characters) -> d + n; else -1, with dst written in part.
    k = 0
    while k < n:
        c = src[s + k]
        if c == 34 or c == 92 or c < 32:
            return -1
        dst[d + k] = c
        k += 1
    return d + n


@micropython.viper
def dec(b, i: int, n: int, w: int) -> int:
    # n (>= 0) in decimal into b from i, in w digits (its last w, zero-padded), or in as many
    # as it has when w is 0 -> where they end. IndexError when b ends first.
    e = i + w
    if w == 0:
        t = n
        e = i + 1
        while t >= 10:
            t //= 10
            e += 1
    if i < 0 or e > int(len(b)):
        raise IndexError
    p = ptr8(b)
    k = e
    while k > i:
        k -= 1
        p[k] = 48 + n % 10
        n //= 10
    return e


@micropython.viper
def civil(b, i: int) -> int:
    # The date 'YYYY-MM-DD' at b[i:i+10] -> its days since 1970-01-01 (Howard Hinnant's
    # days_from_civil; month and day not range-checked), or -0x40000000 when it is not one
    # there. clock.py has the same in Python.
    if i < 0 or i + 10 > int(len(b)):
        return -0x40000000
    p = ptr8(b)
    v = 0  # the digits as one number, YYYYMMDD
    k = i
    while k < i + 10:
        c = int(p[k]) - 48
        if k == i + 4 or k == i + 7:
            if c != -3:  # -
                return -0x40000000
        elif c < 0 or c > 9:
            return -0x40000000
        else:
            v = v * 10 + c
        k += 1
    m = v // 100 % 100
    y = v // 10000 + 400  # 400 years on: no negative number to divide for years from 0
    if m <= 2:
        y -= 1
        m += 9
    else:
        m -= 3
    era = y // 400
    y -= era * 400
    v = (153 * m + 2) // 5 + v % 100 - 1 + y * 365 + y // 4 - y // 100
    return era * 146097 + v - 719468 - 146097


@micropython.viper
def daytime(b, i: int) -> int:
    # The time 'hh:mm:ss' at b[i:i+8] -> its seconds since midnight (the fields not
    # range-checked), or -1 when it is not one there. clock.py has the same in Python.
    if i < 0 or i + 8 > int(len(b)):
        return -1
    p = ptr8(b)
    v = 0
    t = 0
    k = 0
    while k < 8:
        c = int(p[i + k]) - 48
        if k == 2 or k == 5:
            if c != 10:  # :
                return -1
            v *= 60  # hours to minutes, minutes to seconds
        elif c < 0 or c > 9:
            return -1
        elif k == 0 or k == 3 or k == 6:
            t = c * 10  # a field's first digit
        else:
            v += t + c
        k += 1
    return v


@micropython.viper
def skip(b: ptr8, i: int, n: int) -> int:
    # The first j in [i, n) that is not JSON whitespace -> j, or n (jscan.py).
    while i < n:
        c = b[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            return i
        i += 1
    return n


@micropython.viper
def span(b: ptr8, i: int, n: int) -> int:
    # b[i] opens a string, an object or an array -> the index after its end (the quote or the
    # bracket at its depth), or -1 if b[:n] ends first. Which bracket closes which is left to
    # the caller (jscan.py).
    depth = 0
    while i < n:
        c = b[i]
        if c == 34:  # "
            i += 1
            while i < n:
                c = b[i]
                if c == 34:
                    break
                if c == 92:  # a backslash escapes the character after it
                    i += 1
                i += 1
            if i >= n:
                return -1
            if depth == 0:
                return i + 1
        elif c == 123 or c == 91:  # { [
            depth += 1
        elif c == 125 or c == 93:  # } ]
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1
