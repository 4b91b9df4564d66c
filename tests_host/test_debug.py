"""The serial debugging REPL (firmware/debug.py): the `cp` object on the in-process charger, and
the small line REPL (firmware/linerepl.py) used when aiorepl is not installed, fed keystrokes as a
serial port would."""
import asyncio
import io

import hwsupport
from debug import Tool
from linerepl import repl


class Keys:
    """A stream of keystrokes, one byte per read(1), as asyncio.StreamReader(sys.stdin)."""

    def __init__(self, text):
        self.data = text.encode()

    async def read(self, n):
        b, self.data = self.data[:n], self.data[n:]
        await asyncio.sleep(0)
        return b


def test_cp_object(csms):
    async def main():
        rig = hwsupport.Rig(connectors=1)
        await rig.start(csms)
        cp = Tool(rig.charger)
        assert "status()" in repr(cp)
        s = cp.status()
        assert s["accepted"] and s["connectors"][0]["status"] == "Available"
        rig.world.ev(1).plugged = True
        cp.start(1, "BYHAND")  # no Authorize: started by hand
        await rig.until(lambda: cp.status()["connectors"][0]["status"] == "Charging")
        c = cp.connectors()[0]
        assert c["pilot"] == "C" and c["contactor"] and c["authorised"] and c["locked"]
        assert c["offered_a"] == 16 and c["fault"] is None
        assert cp.config("HeartbeatInterval") == "300"
        assert cp.config("HeartbeatInterval", 60) == "Accepted"
        assert cp.config()["HeartbeatInterval"] == "60"
        q = cp.queue()
        assert set(q) == {"queued", "next_in_ms", "connected"}
        cp.stop(1)
        await rig.until(lambda: cp.status()["connectors"][0]["status"] == "Finishing")
        cp.card(1, "CARD9")
        await rig.until(lambda: cp.status()["connectors"][0]["status"] == "Charging")
        cp.card("CARD9")  # at the board's reader: the same card stops its own transaction
        await rig.until(lambda: cp.status()["connectors"][0]["status"] == "Finishing")
        await rig.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert "BYHAND" not in [p["idTag"] for p in csms.of("Authorize")]
    assert csms.of("StartTransaction")[0]["idTag"] == "BYHAND"


def test_line_repl_echoes_edits_and_evaluates():
    out = io.StringIO()
    ns = {"x": 40}
    keys = "x +\x7f+ 2\r" "y = x * 2\r" "y\n" "1/0\r" "\r"
    asyncio.run(repl(ns, Keys(keys), out))
    text = out.getvalue()
    assert "42\n" in text  # x + 2, after a backspace
    assert ns["y"] == 80 and "80\n" in text
    assert "ZeroDivisionError" in text
    assert "\b \b" in text and text.count(">>> ") == 6
