# Run by test_jscan.py on the MicroPython unix port, whose json.loads is not CPython's: random
# JSON, whole and damaged, walked with jscan reads as this json.loads reads it (where the walk
# takes it); a long SendLocalList CALL in the WebSocket's memoryview gets the answer, and leaves
# the list, that the same CALL parsed whole gets. argv[1]: an empty folder to use as flash, argv[2]
# a seed. Prints OK.
import json
import os
import random
import sys

from ocpp import config, jscan, rpc, store
from ocpp.profiles import localauth

from jwalk import walk  # beside this script

random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
CHARS = 'ab"\\{}[],: \n\t\x0c\x01e1-.'
DAMAGE = ('"', "\\", "{", "}", "[", "]", ",", ":", " ", "1", "x", "\x0c", "\x0b", "e", "-", ".")


def text():
    return "".join(random.choice(CHARS) for _ in range(random.randint(0, 6)))


def value(depth=0):
    k = random.randint(0, 9 if depth < 3 else 5)
    if k == 0:
        return None
    if k == 1:
        return random.randint(0, 1) == 1
    if k == 2:
        return random.randint(-(10**12), 10**12)
    if k == 3:
        return random.randint(-1000, 1000) / 8
    if k <= 5:
        return text()
    if k <= 7:
        return [value(depth + 1) for _ in range(random.randint(0, 4))]
    return {text(): value(depth + 1) for _ in range(random.randint(0, 4))}


def outcome(f, b):
    try:
        return f(b)
    except ValueError:
        return ValueError


taken = refused = 0
for _ in range(3000):
    s = json.dumps(value())
    b = memoryview(s.encode())
    assert walk(b) == json.loads(s), s
    d = bytearray(s.encode())
    for _ in range(random.randint(1, 3)):
        i = random.randint(0, len(d))
        if random.randint(0, 1) and i < len(d):
            d[i : i + 1] = b""
        else:
            d[i:i] = random.choice(DAMAGE).encode()
    want = outcome(json.loads, bytes(d))
    got = outcome(walk, memoryview(d))
    # Where the walk takes the text, json.loads reads the same. The reverse need not hold here:
    # MicroPython's json.loads also takes much that is not JSON ('[1 2]', '{"a",1}', '[}'),
    # which the walk refuses, and rpc then parses the text whole as it always did.
    assert got is ValueError or got == want, (bytes(d), got, want)
    if got is ValueError:
        refused += 1
    else:
        taken += 1
assert taken > 300 and refused > 300, (taken, refused)  # both cases were tried


# ---- a long SendLocalList, read in pieces and parsed whole


class Cp:
    def __init__(self):
        self.log = lambda m: None
        self.config = config.Config(self.log)


def answer(frame, whole, folder):
    store.dir = folder
    cp = Cp()
    r = rpc.Rpc(localauth.setup(cp), cp.log)
    cp.config.set("SendLocalListMaxLength", 120, False)
    data = memoryview(bytearray(frame))
    if whole:  # what handle() does with a frame it does not read in pieces (_LONG is a const)
        msg = rpc._loads(data)
        out = r._route(msg) if msg is not rpc._NOT_JSON else rpc.error_frame(
            "-1", "FormationViolation", "not valid JSON")
    else:
        out = r.handle(data)
    path = store.path("locallist.bin")
    state = open(path, "rb").read() if _exists(path) else None
    if state is not None:
        os.remove(path)
    return out, state


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


folder = sys.argv[1]
entries = [{"idTag": "t%03d" % (i * 37 % 100), "idTagInfo": {"status": "Blocked"}}
           for i in range(100)]
entries[5]["idTagInfo"] = {"status": "Accepted", "parentIdTag": "P", "expiryDate":
                           "2030-01-01T00:00:00Z"}
frame = json.dumps([2, "sll", "SendLocalList", {"listVersion": 4, "updateType": "Full",
                                                "localAuthorizationList": entries}]).encode()
a = answer(frame, False, folder)
assert a[0] == '[3, "sll", {"status": "Accepted"}]' and len(a[1]) == 16 + 100 * 52, a[0]
assert a == answer(frame, True, folder)
frame = frame.replace(b'"Full"', b'"Differential"').replace(b'"t017"', b'"t017", "x": 1')
a = answer(frame, False, folder)
assert a[0] == '[4, "sll", "FormationViolation", "x is not a field of this action", {}]', a[0]
assert a == answer(frame, True, folder)
same = 0
for _ in range(150):
    d = bytearray(frame)
    i = random.randint(0, len(d) - 1)
    d[i : i + 1] = random.choice(DAMAGE + ("",)).encode()
    a = answer(d, False, folder)
    if outcome(walk, memoryview(d)) is ValueError and a[0] != answer(d, True, folder)[0]:
        # Not JSON, yet json.loads took it, whole or in pieces: MicroPython's makes something
        # of text like '{"a"1 "b"}', and not the same thing of a part as of the whole.
        continue
    assert a == answer(d, True, folder), bytes(d)
    same += 1
assert same > 100, same
print("OK")
