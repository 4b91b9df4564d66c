# What a board keeps of the heap figures: start-up drops the modules it needs only once
# (forget, unload), and the `code` figure of the simulator's `mem` command (console.py, which has
# the rest of them):
#   code  - gc.mem_alloc() after a collection once every module is imported and before the
#           charger exists (startup.py calls mark()): loaded bytecode, module dicts, interned
#           strings, plus the small settings dict; less what unload() then freed (start-up's
#           own code, the board file's dicts). state = alloc now - code.
import gc
import sys

code = None


def mark():
    global code
    gc.collect()
    code = gc.mem_alloc()


def forget(name):
    """Drop a module needed once at start-up: with no reference left, its code leaves the
    heap."""
    sys.modules.pop(name, None)
    pkg, _, attr = name.rpartition(".")
    try:
        delattr(sys.modules[pkg], attr)
    except (KeyError, AttributeError):
        pass


def unload(*names):
    """forget() the modules `names` (None: skipped); what that frees was counted as code and is
    gone: the code figure drops by exactly that."""
    global code
    gc.collect()
    a = gc.mem_alloc()
    for name in names:
        if name:
            forget(name)
    gc.collect()
    if code is not None:
        code -= a - gc.mem_alloc()
