# Serial debugging while the charger runs: an asyncio REPL on the USB serial port with a `cp`
# object to look at and poke the charger. micropython-lib's aiorepl is used when installed
# (`mpremote mip install aiorepl`: history, await at the prompt); otherwise a small line REPL of
# our own (linerepl.py, loaded only then).
#
#   cp.status()          the charger at a glance, as the simulator's `status`, plus the hardware
#   cp.connectors()      per connector: status, pilot state and levels, offer, contactor, meter
#   cp.config()          every configuration key; cp.config("Key") one; cp.config("Key", "v") set
#   cp.queue()           how many transaction messages wait for the central system, and when
#   cp.start(1, "TAG")   start a session by hand (no Authorize), when the EV is plugged
#   cp.stop(1)           stop connector 1's transaction (reason Local)
#   cp.card(1, "TAG")    as if the card was shown at connector 1 (or cp.card("TAG"): the reader)
import asyncio


class Tool:
    def __init__(self, charger):
        self.charger = charger

    def __repr__(self):
        return "<cp: status() connectors() config() queue() start() stop() card()>"

    def status(self):
        ch = self.charger
        cp = ch.cp
        return {
            "connected": cp.connected,
            "accepted": cp.registration == "Accepted",
            "queued": len(cp.txq),
            "connectors": [
                {
                    "id": c.id,
                    "status": c.status,
                    "error": c.error_code,
                    "transaction": None if c.tx is None else c.tx.id,
                    "energy_wh": ch.energy_wh(c.id),
                }
                for c in cp.connectors[1:]
            ],
        }

    def connectors(self):
        ch = self.charger
        out = []
        for cid in range(1, ch.n + 1):
            p = ch.hw.port(cid)
            il = p.interlock
            out.append(
                {
                    "id": cid,
                    "status": ch.cp.connectors[cid].status,
                    "pilot": p.pilot.state,
                    "pilot_mv": (p.pilot.high_mv, p.pilot.low_mv),
                    "offered_a": p.pilot.offered,
                    "contactor": p.contactor.closed,
                    "authorised": il.authorised,
                    "fault": il.fault,
                    "tripped": il.tripped,
                    "locked": None if p.lock is None else p.lock.locked,
                    "amps": [round(a, 2) for a in p.meter.amps],
                    "power_w": p.meter.read("Power.Active.Import"),
                    "energy_wh": p.meter.wh,
                }
            )
        return out

    def config(self, key=None, value=None):
        cfg = self.charger.cp.config
        if value is not None:
            return cfg.change(key, str(value))
        found, unknown = cfg.entries([key] if key else None)
        if key:
            return found[0][2] if found else None
        return {k: v for k, _, v in found}

    def queue(self):
        q = self.charger.cp.txq
        cp = self.charger.cp
        return {"queued": len(q), "next_in_ms": q.retry_in(), "connected": cp.connected}

    def start(self, cid=1, tag="REPL"):
        asyncio.create_task(self.charger.start_by_hand(cid, tag))

    def stop(self, cid=1):
        asyncio.create_task(self.charger.stop(cid, "Local"))

    def card(self, cid, tag=None):
        if tag is None:  # cp.card("TAG"): shown at the board's reader
            asyncio.create_task(self.charger.card_at_reader(cid))
        else:
            asyncio.create_task(self.charger.card(cid, tag))


def start_repl(charger):
    ns = {"cp": Tool(charger), "charger": charger, "hw": charger.hw, "asyncio": asyncio}
    try:
        import aiorepl
    except ImportError:
        from linerepl import repl

        return asyncio.create_task(repl(ns))
    return asyncio.create_task(aiorepl.task(ns))
