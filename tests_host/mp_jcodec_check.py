# Run by test_jcodec.py on the MicroPython unix port: each payload's compact JSON text in the file
# argv[1] is coded to the bytes CPython coded it to (its words found by _word_at()'s searches, its
# timestamps read by _secs() as bytes, with the native same()), and back. Prints OK.
import json
import sys

from ocpp import jcodec

with open(sys.argv[1]) as f:
    cases = json.load(f)
for text, want in cases:
    b = text.encode()
    buf = bytearray(len(b))
    got = bytes(buf[: jcodec._coded_into(b, buf, 0)])
    assert got == bytes(want), (text, got, bytes(want))
    assert jcodec.unpack(got) == json.loads(text), text
print("OK")
