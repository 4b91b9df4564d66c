# Start-up, run once by main.py and then dropped from the heap: read and check settings.json and
# the board file, build the hardware layer and the charger. Everything here is needed only until
# the charger exists, so it lives in its own module, which main.py forgets (with settings, the
# board checker and, on a board, the board file: its dicts are read once into the hardware
# objects). Anything wrong stops start-up with one line per problem on the REPL and the status
# LED blinking fast; the contactors stay open.
import asyncio

from memstat import forget


def _board_name(name):
    if name:
        return name
    import os

    try:
        files = [f for f in os.listdir("boards") if f.endswith(".py") or f.endswith(".mpy")]
    except OSError:
        files = []
    names = [f.rsplit(".", 1)[0] for f in files]
    return names[0] if len(names) == 1 else ""


def _load_board(name):
    if not name:
        return None, ["settings.json: board is missing (and boards/ holds not exactly one file)"]
    try:
        board = __import__("boards." + name, None, None, ("CONNECTORS",))
    except ImportError as e:
        return None, ["board %s: cannot load boards/%s (%s)" % (name, name, e)]
    from hal.boardcheck import BoardError, check

    try:
        check(board)
    except BoardError as e:
        return board, [str(e)]
    finally:
        forget("hal.boardcheck")
    return board, []


def _halt(problems, board, log):
    """Start-up is impossible: say why, blink, and leave the REPL to the user."""
    log("charger NOT started:")
    for p in problems:
        log("  " + p)
    if board is not None and getattr(board, "CONSOLE", False):
        raise SystemExit(2)
    try:
        _blink(board.CONNECTORS[0]["led"], 200)
    except Exception:  # no board, no LED, no timer: the REPL message has to do
        pass
    log("fix settings.json or the board file, then reset (machine.reset())")


def _blink(pin_id, period_ms):
    # From a timer: only the REPL is left running.
    import machine

    from hal.hardware import every

    pin = machine.Pin(pin_id, machine.Pin.OUT)
    every(period_ms, lambda: pin.value(not pin.value()))


def build(log):
    """(charger, wifi or None, console, repl, board module name), or None when start-up
    stopped (the problems are logged)."""
    import settings

    s, problems = settings.load(log=log)
    board, errors = _load_board(_board_name(s["board"]))
    problems += errors
    console = board is not None and getattr(board, "CONSOLE", False)
    if board is not None and not console:
        problems += settings.check_device(s)
    forget("settings")
    if problems:
        _halt(problems, board, log)
        return None
    n = s["connectors"]
    if n > len(board.CONNECTORS):
        log("main: board %s has %d connectors, settings ask for %d" % (
            board.NAME, len(board.CONNECTORS), n))
        n = s["connectors"] = len(board.CONNECTORS)
    from charger import PROFILES, Charger
    from hal.hardware import Hardware, load_drivers

    load_drivers(board, n)

    # Everything the charger runs is imported now, so that memstat.mark() counts it as code, and
    # its blocks are placed while the heap is still empty: the library's profiles (api.init()
    # imports them) and the parts of asyncio it loads on first use (the engine's Event, Lock,
    # open_connection and wait_for_ms, the console's StreamReader): 11 KB (64-bit) that would
    # otherwise be loaded among the engine's objects and counted as its state.
    for name in PROFILES:
        __import__("ocpp.profiles." + name)
    for name in ("Event", "Lock", "StreamReader", "wait_for_ms"):
        getattr(asyncio, name, None)
    if console:
        import console as _console  # noqa: F401
    else:
        from hal.wifi import Wifi

        if s["repl"]:
            import debug  # noqa: F401  (main.py starts its REPL)
    import memstat

    memstat.mark()  # everything is imported and nothing of the charger exists yet: `mem` code
    hw = Hardware(board, n, log)
    charger = Charger(hw, s, board, log)
    wifi = None
    if not console:
        wifi = Wifi(s["wifi_ssid"], s["wifi_password"], log,
                    getattr(board, "WIFI_PM_OFF", False), s["cp_id"])
    return charger, wifi, console, s["repl"], board.__name__
