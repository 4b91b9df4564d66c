# The debug REPL's fallback when micropython-lib's aiorepl is not installed (debug.py): one line
# at a time, an expression's value printed. It echoes and edits (backspace) itself, since the
# port's own line editor is not running while the charger's tasks are.
import asyncio
import sys


async def repl(ns, stream=None, out=None):
    """A minimal asyncio REPL: one line at a time, an expression's value printed."""
    reader = stream or asyncio.StreamReader(sys.stdin)
    out = out or sys.stdout
    line = bytearray()
    out.write("\ncharger REPL: try cp.status()\n>>> ")
    while True:
        b = await reader.read(1)
        if not b:
            return
        c = b[0]
        if c in (0x0D, 0x0A):  # Enter
            out.write("\n")
            if line:
                run(bytes(line).decode(), ns, out)
                line = bytearray()
            out.write(">>> ")
        elif c in (0x08, 0x7F):  # Backspace
            if line:
                line = line[:-1]
                out.write("\b \b")
        elif c >= 0x20:
            line.append(c)
            out.write(chr(c))


def run(src, ns, out):
    try:
        try:
            code = compile(src, "<repl>", "eval")
        except SyntaxError:
            exec(compile(src, "<repl>", "exec"), ns)
            return
        v = eval(code, ns)
        if v is not None:
            out.write(repr(v) + "\n")
    except Exception as e:
        if hasattr(sys, "print_exception"):
            sys.print_exception(e, out)
        else:
            out.write("%s: %s\n" % (type(e).__name__, e))
