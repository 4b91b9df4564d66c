# The simulator's console (host board): command lines on stdin drive the simulated hardware, and
# `status` prints one JSON line on stdout. This is the stable contract tools/sim exposes:
#   plug C | unplug C | card C TAG | ev C AMPS | fault C [CODE] | clear C | status | quit
# Logs go to stderr; stdout carries only status lines.
import asyncio
import json
import sys


def status(charger):
    cp = charger.cp
    conns = []
    for c in cp.connectors[1:]:
        tx = c.tx
        conns.append(
            {
                "id": c.id,
                "status": c.status,
                "transaction": None if tx is None else tx.id,
                "energy_wh": charger.hw.connector(c.id).energy_wh(),
            }
        )
    return {
        "connected": cp.connected,
        "accepted": cp.registration == "Accepted",
        "connectors": conns,
        "queued": len(cp.txq),
    }


def _connector(charger, word):
    cid = int(word)
    if not 1 <= cid < len(charger.cp.connectors):
        raise ValueError("no connector %s" % word)
    return cid


async def command(charger, line):
    """Run one command; returns False on quit. A bad command raises ValueError, changing
    nothing."""
    words = line.split()
    if not words:
        return True
    cmd, args = words[0], words[1:]
    if cmd == "quit":
        return False
    if cmd == "status" and not args:
        sys.stdout.write(json.dumps(status(charger)) + "\n")
        return True
    if cmd in ("plug", "unplug", "clear") and len(args) == 1:
        cid = _connector(charger, args[0])
        if cmd == "clear":
            charger.fault(cid, None)
        else:
            charger.plug(cid, cmd == "plug")
        return True
    if cmd == "fault" and len(args) in (1, 2):
        cid = _connector(charger, args[0])
        charger.fault(cid, args[1] if len(args) == 2 else "OtherError")
        return True
    if cmd == "card" and len(args) == 2:
        cid = _connector(charger, args[0])
        if len(args[1]) > 20:
            raise ValueError("an idTag has at most 20 characters")
        asyncio.create_task(charger.card(cid, args[1]))
        return True
    if cmd == "ev" and len(args) == 2:
        cid = _connector(charger, args[0])
        amps = int(args[1])
        if amps < 0:
            raise ValueError("amps must be >= 0")
        charger.hw.connector(cid).ev_max_a = amps
        return True
    raise ValueError("unknown command: " + line)


async def run(charger, log):
    reader = asyncio.StreamReader(sys.stdin)
    while True:
        line = await reader.readline()
        if not line:  # EOF quits cleanly
            return
        try:
            if not await command(charger, line.decode().strip()):
                return
        except ValueError as e:
            log("error: %s" % e)
