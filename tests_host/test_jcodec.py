"""jcodec's JSON form as _word_at() finds the words by searching for them and _secs() reads a
timestamp as bytes: the coded form of any payload is the one a plain reading of the format gives
(the first word of the table at each quote, a timestamp exactly as clock.fmt() writes it as five
bytes), on CPython and, for the same payloads, on MicroPython (mp_jcodec_check.py)."""
import json

import clockref
import mpcheck
from hypothesis import given, settings, strategies as st

from ocpp import clock, jcodec

WORDS = jcodec._WORDS.split(b"\0")[:-1]
TS = "2026-03-01T10:00:00Z"


def ref_secs(s):
    # The seconds s stands for if clock.fmt() writes s for them (and they fit 4 bytes).
    t = clock.parse(s)
    return t if t is not None and 0 <= t <= 0xFFFFFFFF and clock.fmt(t) == s else None


def ref_coded(b):
    # The coded form of the compact JSON b, read off the format's description.
    out = bytearray()
    j = 0
    while j < len(b):
        if b[j] != 0x22:
            out.append(b[j])
            j += 1
            continue
        for code, w in enumerate(WORDS, 1):
            if b.startswith(w, j):
                j += len(w)
                if w == b'"timestamp":"' and b[j + 20 : j + 21] == b'"':
                    t = ref_secs(b[j : j + 20].decode("utf-8", "replace"))
                    if t is not None:
                        out += b"\x1f" + t.to_bytes(4, "big")
                        j += 21
                        break
                out.append(code)
                break
        else:
            out.append(0x22)
            j += 1
    return bytes(out)


def test_every_word_is_a_quote_and_a_small_letter():
    # _word_at() searches only after a quote followed by a-z.
    assert len(WORDS) == jcodec._NWORDS
    assert all(w[0] == 0x22 and 97 <= w[1] <= 122 for w in WORDS)


KEYS = st.sampled_from([w.decode().split('"')[1] for w in WORDS] + ["x", "Reason", "ti", ""])
STAMPS = st.builds(lambda t, r: clockref.near(r, clock.fmt(t)), st.integers(0, 2**32 + 10**6),
                   st.randoms(use_true_random=False)) | st.builds(
    # each field at and past its bounds: Feb 29 of a year that has none, 24:00, 60 seconds...
    lambda *f: "%04d-%02d-%02dT%02d:%02d:%02dZ" % f, st.integers(1969, 2107), st.integers(0, 13),
    st.integers(0, 32), st.integers(0, 25), st.integers(0, 61), st.integers(0, 61))
TEXT = st.sampled_from(["Local", "PowerLoss", "Outlet", "Wh", "Sample.Clock", '"connectorId":',
                        '"timestamp":"' + TS + '"', "é\x01", "", "a"]) | STAMPS
VALUES = st.recursive(st.none() | st.integers(-5, 10**6) | TEXT, lambda c: st.lists(
    c, max_size=3) | st.dictionaries(KEYS, c, max_size=4), max_leaves=12)
PAYLOADS = st.dictionaries(KEYS, VALUES, max_size=6)


@settings(max_examples=300)
@given(PAYLOADS)
def test_the_coded_form_is_the_plain_reading(p):
    b = json.dumps(p, separators=(",", ":")).encode()
    assert jcodec.pack_json(p) == ref_coded(b)
    assert jcodec.unpack(jcodec.pack(p)) == p


@given(STAMPS)
def test_a_timestamp_is_coded_exactly_when_fmt_writes_it(s):
    assert jcodec._secs(s) == ref_secs(s)


def test_every_field_at_its_bounds():
    for y in (1969, 1970, 2000, 2024, 2100, 2106, 2107):
        for m in range(14):
            for d in (0, 1, 28, 29, 30, 31, 32):
                for hms in ((0, 0, 0), (23, 59, 59), (24, 0, 0), (0, 60, 0), (0, 0, 60)):
                    s = "%04d-%02d-%02dT%02d:%02d:%02dZ" % ((y, m, d) + hms)
                    assert jcodec._secs(s) == ref_secs(s), s


def test_the_same_on_micropython(tmp_path):
    cases = [{"connectorId": 1, "idTag": "04A2B3C4D5E6F7", "meterStart": 12345, "timestamp": TS},
             {"meterStop": 5, "timestamp": "2026-02-30T10:00:00Z", "reason": "Local",
              "transactionData": [{"timestamp": TS, "sampledValue": [{"value": "1"}]}]},
             {"idTag": '"connectorId":', "x": '"timestamp":"' + TS + '"', "reason": "Other"}]
    path = tmp_path / "cases.json"
    # (As JSON text: a dict on MicroPython does not keep its order.)
    path.write_text(json.dumps([[json.dumps(p, separators=(",", ":")), list(jcodec.pack_json(p))]
                                for p in cases]))
    r = mpcheck.run("mp_jcodec_check.py", path)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
