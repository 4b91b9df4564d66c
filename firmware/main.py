# Device entry point: start-up (settings + board file, both checked -> hardware layer -> charger,
# the OCPP library through its public API; firmware/startup.py, dropped once done) -> run. Anything
# wrong with the settings or the board stops start-up with one line per problem on the REPL and
# the status LED blinking fast; the contactors stay open on every way out. On the host board the
# console reads simulator commands from stdin instead of the debug REPL. This file is kept small:
# a board compiles it from source at every boot and holds its code for as long as it runs.
import asyncio
import sys


def log(msg):
    print(msg, file=sys.stderr)


def main():
    import gc

    # Besides when the heap is full, collect each time 1/32 of it has been allocated: garbage is
    # reclaimed while it is a few KB, so new objects fill the holes low in the heap and the free
    # space stays in one piece. Waiting for a full heap leaves the long-lived objects (start-up's
    # imports, the engine's state) strewn over all of it, and a larger block (the answer to
    # GetConfiguration, a .mpy being loaded) then fails while the free heap, in pieces, would
    # hold it several times. Measured
    # with tools/sim --mpy (docs/hardware.md, "Memory"). From the first line: start-up's imports
    # are where most of the heap gets its long-lived objects.
    if hasattr(gc, "threshold"):
        gc.threshold((gc.mem_free() + gc.mem_alloc()) >> 5)
    import startup

    built = startup.build(log)
    del startup
    import memstat

    # Start-up's code, and the board file's dicts (now read into the hardware objects; the host
    # board's simulated world keeps its own), leave the heap.
    memstat.unload("startup", built and built[4])
    if built is None:
        return
    charger, wifi, console, repl, _ = built
    del built
    hw = charger.hw
    try:
        asyncio.run(_run(charger, wifi, console, repl))
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
    if console:
        import console as con

        con.start_sampler()  # OCPP_MEMSTAT=1: the heap-peak sampler behind the `mem` command
        charger.start(wifi)
        await con.run(charger, log)
        await charger.cp.stop()
        return
    charger.start(wifi)
    if repl:
        import debug

        debug.start_repl(charger)
    while True:
        await asyncio.sleep(3600)


main()
