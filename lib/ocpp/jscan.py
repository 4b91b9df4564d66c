# Where JSON values start and end in JSON text, without parsing them: a message too big to be
# parsed whole into dicts and lists (a SendLocalList of many entries) is walked with these, and
# each small piece parsed on its own (load). The text is any buffer: the memoryview of the
# WebSocket's receive buffer is walked in place, not copied (MicroPython's memoryview has no
# find(), and a copy to bytes would cost the message's length again at the very peak). A string,
# object or array is spanned in one call of native code (_xor.span); the Python loops over the
# bytes below run only where that cannot be imported (CPython, a build without it).
#
# The scanner checks the structure between the pieces (brackets, commas, colons, whitespace),
# the pieces' json.loads the pieces: text it takes is valid JSON exactly when every piece it
# yields is. It is stricter than MicroPython's json.loads in one way: whitespace is JSON's four
# characters. Anything wrong raises ValueError, and nothing outside b[i:n] is read.
import json

from .compat import MICROPYTHON

try:
    from ._xor import skip as _nskip, span as _nspan
except Exception:
    _nskip = _nspan = None


def load(b, i, j):
    # json.loads of b[i:j]: in place on MicroPython, CPython's wants bytes. ValueError if it is
    # not JSON (the caller's to catch: a message that is not JSON is answered as one).
    return json.loads(b[i:j] if MICROPYTHON else bytes(b[i:j]))


def skip(b, i, n):
    # -> the index of the first character at or after i that is not JSON whitespace (or n).
    if _nskip is not None:
        return _nskip(b, i, n)
    while i < n:
        c = b[i]
        if c != 0x20 and c != 0x0A and c != 0x0D and c != 0x09:
            break
        i += 1
    return i


def after(b, i, n):
    # Past a separator (whitespace, a comma, whitespace) from i -> where the next value starts.
    i = skip(b, i, n)
    if i >= n or b[i] != 0x2C:  # ,
        raise ValueError("',' expected")
    return skip(b, i + 1, n)


def string_end(b, i, n):
    # b[i] opens a string -> the index after the quote that closes it.
    if i >= n or b[i] != 0x22:
        raise ValueError("string expected")
    return _span(b, i, n)


def _span(b, i, n):
    # b[i] opens a string, an object or an array -> the index after its end. The native
    # _xor.span in one call where it imports; the same walk in Python otherwise.
    if _nspan is not None:
        j = _nspan(b, i, n)
    else:
        j, depth = i, 0
        while j < n:
            c = b[j]
            if c == 0x22:
                j += 1
                while j < n and b[j] != 0x22:
                    j += 2 if b[j] == 0x5C else 1  # a backslash escapes the character after it
                if j >= n:
                    break
                if not depth:
                    return j + 1
            elif c == 0x7B or c == 0x5B:  # { [
                depth += 1
            elif c == 0x7D or c == 0x5D:  # } ]
                depth -= 1
                if not depth:
                    return j + 1
            j += 1
        j = -1
    if j < 0:
        raise ValueError("unterminated string, object or array")
    return j


def value_end(b, i, n):
    # b[i] starts a value -> the index after it. A number, true, false or null ends at the
    # first character that cannot be part of it; the piece's json.loads says if it is one.
    # Which bracket closes which is not checked: a piece with them mismatched fails its
    # json.loads, or the walk of it (items, members).
    if i >= n:
        raise ValueError("value expected")
    c = b[i]
    if c == 0x22 or c == 0x7B or c == 0x5B:  # " { [
        return _span(b, i, n)
    j = i
    while j < n:  # a few bytes at most
        c = b[j]
        if c <= 0x20 or c in b',:]}{["':  # (MicroPython's json.loads takes 1\f as 1)
            break
        j += 1
    if j == i:
        raise ValueError("value expected")
    return j


def one(b):
    # b is one JSON value between whitespace -> (start, end) of it; ValueError otherwise.
    n = len(b)
    i = skip(b, 0, n)
    e = value_end(b, i, n)
    if skip(b, e, n) != n:
        raise ValueError("text after the value")
    return i, e


def _first(b, i, n, opening, closing, what):
    # b[i:n] is an array or object, as value_end() delimits it -> where its first element
    # starts, or -1 when it is empty.
    if n - i < 2 or b[i] != opening or b[n - 1] != closing:
        raise ValueError(what + " expected")
    i = skip(b, i + 1, n)
    return -1 if i == n - 1 else i


def _next(b, e, n):
    # An element ended at e -> where the next one starts, or -1 at the closing bracket (n - 1).
    i = skip(b, e, n)
    return -1 if i == n - 1 else after(b, i, n)


def items(b, i, n):
    """b[i:n] is a JSON array, as value_end() delimits it: yields (start, end) of each element.
    Raises ValueError where it is not one."""
    i = _first(b, i, n, 0x5B, 0x5D, "array")
    while i >= 0:
        e = value_end(b, i, n)
        yield i, e
        i = _next(b, e, n)


def members(b, i, n):
    """b[i:n] is a JSON object, as value_end() delimits it: yields (key start, key end, value
    start, value end) of each member, the key with its quotes. Raises ValueError where it is not
    one."""
    i = _first(b, i, n, 0x7B, 0x7D, "object")
    while i >= 0:
        k = string_end(b, i, n)
        v = skip(b, k, n)
        if v >= n or b[v] != 0x3A:  # :
            raise ValueError("':' expected")
        v = skip(b, v + 1, n)
        e = value_end(b, v, n)
        yield i, k, v, e
        i = _next(b, e, n)
