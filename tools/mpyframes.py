"""Which functions MicroPython gives a heap-allocated frame at every call, read from .mpy files
(format 6, MicroPython 1.22+):  .venv/bin/python tools/mpyframes.py build/lib/ocpp/*.mpy [--all]

A bytecode function's frame (its locals, its value stack and 3 words per nested try/with) is
put on the C stack when it is at most 11 words (py/objfun.c, VM_MAX_STATE_ON_STACK), else
allocated on the heap and freed on return: ~2,000 more instructions per call on the unix port,
and a free that sends the next allocations looking for room from the freed block on. One stack
slot too many in a function on every message's path costs that per message; a long function
run once does not matter. Generators (async def) always live on the heap: --all lists them."""
import sys

_ON_STACK = 11  # words
_EXC_WORDS = 3  # mp_exc_stack_t: handler, value stack pointer, previous exception


def _uint(d, p):
    v = 0
    while True:
        b = d[p]
        p += 1
        v = v << 7 | b & 0x7F
        if not b & 0x80:
            return v, p


def _skip_obj(d, p):
    t = d[p]  # MP_PERSISTENT_OBJ_*: 0-4 carry no data, 5 str, 6 bytes, 10 tuple
    p += 1
    if t <= 4:
        return p
    n, p = _uint(d, p)
    if t == 10:
        for _ in range(n):
            p = _skip_obj(d, p)
        return p
    return p + n + (t in (5, 6))  # str and bytes end with a NUL


def frames(path):
    """-> [(name, n_state, n_exc_stack, is_generator)] of the bytecode functions in the file."""
    d = open(path, "rb").read()
    if d[:2] != b"M\x06":
        raise ValueError("%s: not a version 6 .mpy" % path)
    nq, p = _uint(d, 4)
    no, p = _uint(d, p)
    names = []
    for _ in range(nq):
        n, p = _uint(d, p)
        if n & 1:  # a static qstr: only its index is stored
            names.append("<qstr %d>" % (n >> 1))  # (__init__ is 17, append 60, write 164)
        else:
            names.append(d[p : p + (n >> 1)].decode())
            p += (n >> 1) + 1
    for _ in range(no):
        p = _skip_obj(d, p)
    out = []

    def code(p, outer):
        kl, p = _uint(d, p)
        body, p = d[p : p + (kl >> 3)], p + (kl >> 3)
        if kl & 3:
            raise ValueError("%s: native code (viper) is not read" % path)
        z, i = body[0], 1  # the prelude's signature: xSSSSEAA, then xFSSKAED while x is set
        s, e, f, k = z >> 3 & 0xF, z >> 2 & 1, 0, 0
        while z & 0x80:
            z, i = body[i], i + 1
            s |= (z & 0x30) << 2 * k
            e |= (z & 0x02) << k
            f |= (z >> 6 & 1) << k
            k += 1
        while body[i] & 0x80:  # the prelude's sizes
            i += 1
        q, i = _uint(body, i + 1)  # the function's name
        name = names[q] if q < len(names) else "?"
        if outer is None:  # the module's own code
            name = "<module>"
        elif outer != "<module>":
            name = outer + "." + name
        out.append((name, s + 1, e, bool(f)))
        if kl & 4:
            n, p = _uint(d, p)
            for _ in range(n):
                p = code(p, name)
        return p

    code(p, None)
    return out


def main(argv):
    show_all = "--all" in argv
    for path in (a for a in argv if a != "--all"):
        if path.endswith("_xor.mpy"):
            continue
        for name, n_state, n_exc, gen in frames(path):
            words = n_state + _EXC_WORDS * n_exc
            if gen and show_all:
                print("%s: %s: generator, %d words" % (path, name, words))
            elif not gen and words > _ON_STACK:
                print("%s: %s: %d words on the heap (locals and stack %d, try/with %d)"
                      % (path, name, words, n_state, n_exc))


if __name__ == "__main__":
    main(sys.argv[1:])
