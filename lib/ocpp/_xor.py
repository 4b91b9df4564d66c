# WebSocket masking (RFC 6455 5.3) in native code: XOR n bytes of buf from start with the
# 4-byte key at key[koff:koff+4], in place, without allocating. Viper compiles to machine code,
# so this file is built with `mpy-cross -march=...` for the target (x64 for the unix port,
# xtensawin for ESP32, armv6m for the Pico W); ws.py falls back to big-int XOR when it cannot
# be imported (CPython, or a build without the native module).
import micropython


@micropython.viper
def mask(buf: ptr8, start: int, n: int, key: ptr8, koff: int):
    i = 0
    while i < n:
        buf[start + i] ^= key[koff + (i & 3)]
        i += 1
