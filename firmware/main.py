# Device entry point: settings + board file (both checked) -> hardware layer -> charger (the OCPP
# library through its public API) -> run. Anything wrong with the settings or the board stops
# start-up here with one line per problem on the REPL and the status LED blinking fast; the
# contactors stay open on every way out. On the host board the console reads simulator commands
# from stdin instead of the debug REPL.
import asyncio
import sys

import settings


def log(msg):
    print(msg, file=sys.stderr)


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
        _forget("hal.boardcheck")
    return board, []


def _forget(name):
    # A module needed once at start-up: drop it, and its bytecode leaves the heap.
    sys.modules.pop(name, None)
    pkg, _, attr = name.rpartition(".")
    try:
        delattr(sys.modules[pkg], attr)
    except (KeyError, AttributeError):
        pass


def _halt(problems, board):
    """Start-up is impossible: say why, blink, and leave the REPL to the user."""
    log("charger NOT started:")
    for p in problems:
        log("  " + p)
    console = board is not None and getattr(board, "CONSOLE", False)
    if console:
        raise SystemExit(2)
    try:
        _blink(board.CONNECTORS[0]["led"], 200)
    except Exception:  # no board, no LED, no timer: the REPL message has to do
        pass
    log("fix settings.json or the board file, then reset (machine.reset())")


def _blink(pin_id, period_ms):
    # From a timer: only the REPL is left running.
    import machine

    pin = machine.Pin(pin_id, machine.Pin.OUT)
    try:
        t = machine.Timer(-1)  # a virtual timer (rp2)
    except (ValueError, TypeError):
        t = machine.Timer(0)  # esp32: hardware timers only
    t.init(period=period_ms, mode=machine.Timer.PERIODIC,
           callback=lambda _: pin.value(not pin.value()))


def main():
    s, problems = settings.load(log=log)
    board, errors = _load_board(_board_name(s["board"]))
    problems += errors
    console = board is not None and getattr(board, "CONSOLE", False)
    if board is not None and not console:
        problems += settings.check_device(s)
    if problems:
        _halt(problems, board)
        return
    n = s["connectors"]
    if n > len(board.CONNECTORS):
        log("main: board %s has %d connectors, settings ask for %d" % (
            board.NAME, len(board.CONNECTORS), n))
        n = s["connectors"] = len(board.CONNECTORS)
    from charger import Charger
    from hal.hardware import Hardware

    if console:
        import console as _console  # noqa: F401  (now, so that memstat.mark() counts it as code)
    import memstat

    memstat.mark()  # everything is imported and nothing of the charger exists yet: `mem` code
    hw = Hardware(board, n, log)
    charger = Charger(hw, s, board, log)
    wifi = None
    if not console:
        from hal.wifi import Wifi

        wifi = Wifi(s["wifi_ssid"], s["wifi_password"], log,
                    getattr(board, "WIFI_PM_OFF", False), s["cp_id"])
    try:
        asyncio.run(_run(charger, wifi, console, s["repl"]))
    except KeyboardInterrupt:  # Ctrl-C, or mpremote taking over the serial port
        hw.trip()
        hw.keep_alive()
        log("charger stopped; contactors open")
    except BaseException as e:
        hw.trip()
        if console:
            raise
        sys.print_exception(e)
        hw.reboot()
    else:
        hw.trip()


async def _run(charger, wifi, console, repl):
    import gc

    gc.collect()
    import memstat

    if memstat.wanted():  # OCPP_MEMSTAT=1: the heap-peak sampler behind the `mem` command
        asyncio.create_task(memstat.sampler())
    charger.start(wifi)
    if console:
        import console as con

        await con.run(charger, log)
        await charger.cp.stop()
        return
    if repl:
        import debug

        debug.start_repl(charger)
    while True:
        await asyncio.sleep(3600)


main()
