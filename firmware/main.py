# Device entry point: settings + board -> hardware layer -> the OCPP library (through its public
# API) -> run. On the host board the console reads simulator commands from stdin.
import asyncio
import sys

import settings


def log(msg):
    print(msg, file=sys.stderr)


def main():
    s = settings.load(log=log)
    board = __import__("boards." + s["board"], None, None, ("CONNECTORS",))
    n = s["connectors"]
    if not 1 <= n <= len(board.CONNECTORS):
        log("main: board %s has %d connectors, settings ask for %d" % (
            s["board"], len(board.CONNECTORS), n))
        n = s["connectors"] = max(1, min(n, len(board.CONNECTORS)))
    if s["board"] == "host":
        from hal_sim import SimHardware

        hw = SimHardware(board, n)
    else:
        raise SystemExit("board %s: hardware layer not built yet" % s["board"])
    from charger import Charger

    charger = Charger(hw, s, board, log)
    asyncio.run(_run(charger))


async def _run(charger):
    import gc

    gc.collect()
    charger.start()
    if charger.hw.__class__.__name__ == "SimHardware":
        import console

        await console.run(charger, log)
        await charger.cp.stop()
    else:
        while True:
            await asyncio.sleep(3600)


main()
