"""The JSON scanner (jscan.py) and the long SendLocalList read a piece at a time through it:
random JSON walked piece by piece reads as json.loads reads it, and text that is not JSON is
refused by both; a long SendLocalList CALL answered from its JSON text (rpc._piecewise) gets
exactly the answer, and leaves exactly the list, that the same CALL parsed whole gets."""
import json
import os
import tempfile

import mpcheck
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from ocpp import config, jscan, rpc, store
from ocpp.profiles import localauth

from jwalk import walk  # the scanner's reading of a text, down to its scalars


def loads(b):
    try:
        return json.loads(b)
    except ValueError:
        return ValueError


def walked(b):
    try:
        return walk(b)
    except ValueError:
        return ValueError


# Strings full of what the scanner must not be fooled by: quotes, backslash runs, brackets.
TEXT = st.text(st.sampled_from('ab"\\{}[],: \n\té€\x01'), max_size=8)
SCALARS = st.none() | st.booleans() | st.integers(-10**20, 10**20) | TEXT | st.floats(
    allow_nan=False, allow_infinity=False)
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(
    TEXT, c, max_size=4), max_leaves=20)
SEPS = st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", "\t:\r\n")])


def dump(v, seps, indent):
    return json.dumps(v, separators=seps, indent=indent, ensure_ascii=indent is None).encode()


@given(VALUES, SEPS, st.sampled_from([None, 0, 2]))
@settings(max_examples=400, deadline=None)
def test_walked_json_reads_as_json_loads_reads_it(v, seps, indent):
    b = dump(v, seps, indent)
    assert walk(b) == json.loads(b)
    assert walk(b" \n" + b + b"\t ") == v


@given(VALUES, SEPS, st.data())
@settings(max_examples=600, deadline=None)
def test_damaged_json_is_refused_as_json_loads_refuses_it(v, seps, data):
    b = bytearray(dump(v, seps, None))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(b)))
        if data.draw(st.booleans()) and i < len(b):
            del b[i]
        else:
            b[i:i] = data.draw(st.sampled_from([b'"', b"\\", b"{", b"}", b"[", b"]", b",",
                                                b":", b" ", b"1", b"x", b"\x0c"]))
    b = bytes(b)
    want = loads(b)
    got = walked(b)
    if b"\x0c" not in b or want is ValueError:  # (form feed: JSON's whitespace it is not)
        assert got == want or (got != got and want != want)


@pytest.mark.parametrize("text", [
    b'"a\\"b"', b'"a\\\\"', b'"\\\\\\""', b'"}]{["', b'["\\"]", "]"]', b'{"a}":"{\\"}"}',
    b'[[[]], {}, {"a": [{}]}]', b"[1,2 , 3]", b'{"k" : -1.5e3 }', b"[true,false,null]",
])
def test_strings_and_nesting(text):
    assert walk(text) == json.loads(text)


@pytest.mark.parametrize("text", [
    b'"abc', b'"a\\"', b"[1,]", b"[,1]", b"[1 2]", b'{"a":1,}', b'{"a" 1}', b"{1:2}",
    b'{"a":1 "b":2}', b"[1}", b'{"a":[}]', b"[", b"{", b"]", b"", b"[1]]", b"[1] x",
    b'["a" "b"]', b"[tru]", b"[1,,2]", b'{"a":}', b"[]]", b"[[1]", b"[\x0c1]",
])
def test_not_json_is_refused(text):
    with pytest.raises(ValueError):
        walk(text)


# ---- SendLocalList from its JSON text, against the same CALL parsed whole --------------------


class Cp:
    def __init__(self):
        self.log = lambda m: None
        self.config = config.Config(self.log)


def endpoint(folder, maximum):
    store.dir = folder
    cp = Cp()
    handlers = localauth.setup(cp)
    cp.config.set("SendLocalListMaxLength", maximum, False)
    return cp, rpc.Rpc(handlers, cp.log)


def answer(r, frame, whole):
    # The reply to frame, which is long: read a piece at a time, or (whole) parsed whole.
    saved = rpc._LONG
    rpc._LONG = 1 << 30 if whole else 0
    try:
        return r.handle(frame)
    finally:
        rpc._LONG = saved


def state(cp):
    path = store.path("locallist.bin")
    ll = localauth.LocalList(cp)
    return ll.list_version(), open(path, "rb").read() if os.path.exists(path) else None


TAGS = st.sampled_from(["A1", "a1", "B2", "c3", "D4", "X" * 20, "é" * 12, "Z9"])
INFO = st.fixed_dictionaries({"status": st.sampled_from(
    ["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx", "Nope"])}, optional={
    "expiryDate": st.sampled_from(["2030-01-01T00:00:00Z", "yesterday", 5]),
    "parentIdTag": st.sampled_from(["P", "Q" * 21, "é" * 12]),
    "extra": st.just(1)})
ENTRY = st.fixed_dictionaries({"idTag": TAGS | st.just(7)}, optional={
    "idTagInfo": INFO | st.none() | st.just("x")}) | st.just(3)
PAYLOAD = st.fixed_dictionaries({}, optional={
    "listVersion": st.integers(-1, 4) | st.just("2") | st.none(),
    "updateType": st.sampled_from(["Full", "Differential", "Other"]) | st.none(),
    "localAuthorizationList": st.lists(ENTRY, max_size=7) | st.none() | st.just({}),
    "more": st.just([1, {"a": "]"}])})
BASE = [{"idTag": t, "idTagInfo": {"status": "Accepted"}} for t in ("A1", "C3", "M5")]


@given(PAYLOAD, SEPS, st.lists(st.tuples(st.integers(0, 10**4), st.sampled_from(
    [b"", b"}", b",", b'"', b"]", b" ", b"\\"])), max_size=2), st.integers(0, 6))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_send_local_list_read_in_pieces_answers_as_parsed_whole(p, seps, damage, maximum):
    frame = bytearray(json.dumps([2, "id-1", "SendLocalList", p], separators=seps).encode())
    for i, s in damage:  # a byte replaced, or dropped
        i %= len(frame)
        frame[i : i + 1] = s
    frame = bytes(frame)
    saved = store.dir
    try:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            got = []
            for folder, whole in ((a, True), (b, False)):
                cp, r = endpoint(folder, len(BASE))
                first = json.dumps([2, "id-0", "SendLocalList", {
                    "listVersion": 1, "updateType": "Full", "localAuthorizationList": BASE}])
                assert '"Accepted"' in answer(r, first.encode(), whole)
                cp.config.set("SendLocalListMaxLength", maximum, False)
                got.append((answer(r, memoryview(frame), whole), state(cp)))
            assert got[0] == got[1]
    finally:
        store.dir = saved


def test_a_long_list_is_read_in_pieces(monkeypatch, tmp_path):
    # The list is never parsed whole: json.loads never sees more than one entry at a time.
    monkeypatch.setattr(store, "dir", str(tmp_path))
    cp = Cp()
    r = rpc.Rpc(localauth.setup(cp), cp.log)
    cp.config.set("SendLocalListMaxLength", 100, False)
    entries = [{"idTag": "t%03d" % i, "idTagInfo": {"status": "Blocked", "parentIdTag": "P"}}
               for i in range(99, -1, -1)]
    frame = json.dumps([2, "x", "SendLocalList", {"listVersion": 3, "updateType": "Full",
                                                  "localAuthorizationList": entries}])
    longest = []
    real = json.loads
    monkeypatch.setattr(json, "loads", lambda s: longest.append(len(s)) or real(s))
    assert json.loads(r.handle(memoryview(frame.encode())))[2] == {"status": "Accepted"}
    assert max(longest) < 100
    assert cp.local_list.get("T042") == ("Blocked", "P") and cp.local_list.count == 100
    # Not JSON: the answer it always had, and the list as it was.
    assert json.loads(r.handle(frame[:-2].encode() + b"]"))[1:3] == ["-1", "FormationViolation"]
    assert cp.local_list.count == 100
    # A CALLERROR for a bad entry, found wherever it is.
    bad = json.loads(frame)
    bad[3]["listVersion"] = 4
    bad[3]["localAuthorizationList"][90]["idTagInfo"]["status"] = "Maybe"
    out = json.loads(r.handle(json.dumps(bad).encode()))
    assert out[:3] == [4, "x", "PropertyConstraintViolation"] and cp.local_list.version == 3


def test_a_long_call_of_another_action_is_parsed_whole():
    seen = []
    r = rpc.Rpc({"DataTransfer": ((("data", rpc.STR, None),), seen.append)}, print)
    r.handle(json.dumps([2, "y", "DataTransfer", {"data": "x" * 600}]).encode())
    assert seen == [{"data": "x" * 600}]


@given(st.text(max_size=40), st.text(max_size=40), SEPS)
@settings(max_examples=200, deadline=None)
def test_any_id_and_action_in_a_long_call(uid, action, seps):
    # The head of a long CALL read by the scanner: whatever its id and action, the same answer
    # as the CALL parsed whole.
    def handler(p):
        return {"n": len(json.loads(bytes(p)) if isinstance(p, memoryview) else p)}

    r = rpc.Rpc({action: (None, handler), "Other": ((), handler)}, lambda m: None)
    for a in (action, "Other"):
        frame = json.dumps([2, uid, a, {"a": "b" * 600}], separators=seps).encode()
        assert answer(r, memoryview(frame), False) == answer(r, frame, True)


def test_the_same_on_micropython(tmp_path):
    # MicroPython's json.loads is another parser (and a lax one): mp_jscan_check.py.
    r = mpcheck.run("mp_jscan_check.py", tmp_path, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
