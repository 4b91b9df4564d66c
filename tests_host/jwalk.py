# JSON text read with lib/ocpp/jscan.py down to its scalars, each parsed on its own by jscan.load:
# what the scanner makes of a text, to compare with json.loads of it. Shared by test_jscan.py
# (CPython) and mp_jscan_check.py (MicroPython, which finds it beside the script).
from ocpp import jscan


def walk(b):
    i, e = jscan.one(b)
    return _value(b, i, e)


def _value(b, i, e):
    if b[i] == 0x5B:
        return [_value(b, s, t) for s, t in jscan.items(b, i, e)]
    if b[i] == 0x7B:
        return {jscan.load(b, k, v): _value(b, s, t) for k, v, s, t in jscan.members(b, i, e)}
    if jscan.value_end(b, i, e) != e:
        raise ValueError("not one value")
    return jscan.load(b, i, e)
