"""`make sim`: the local central system and the simulated charger against it, in one terminal.

The central system's one-line-per-message log and the charger's log share the terminal; what you
type goes to the charger (see tools/sim for the commands). `quit` or Ctrl-D ends both.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELP = """Commands: plug C | unplug C | card C TAG | ev C AMPS | fault C [CODE] | clear C | status | quit
Try: plug 1, card 1 ABC123, status, card 1 ABC123, unplug 1, quit
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--id", default="CP1")
    ap.add_argument("--connectors", type=int, default=1)
    ap.add_argument("--state", default=os.path.join(ROOT, "build", "sim-state"))
    a = ap.parse_args()
    py = os.path.join(ROOT, ".venv", "bin", "python")
    csms = subprocess.Popen(
        [py, os.path.join(ROOT, "tools", "csms.py"), "--port", str(a.port)],
        stdin=subprocess.PIPE,  # kept open: the central system also takes commands on stdin
    )
    try:
        time.sleep(1.0)
        if csms.poll() is not None:
            sys.exit("the central system did not start (is port %d in use? try PORT=...)" % a.port)
        sys.stderr.write(HELP)
        sim = subprocess.Popen(
            [
                sys.executable,
                os.path.join(ROOT, "tools", "sim"),
                "--csms",
                "ws://127.0.0.1:%d" % a.port,
                "--id",
                a.id,
                "--connectors",
                str(a.connectors),
                "--state",
                a.state,
            ]
        )
        try:
            sim.wait()
        except KeyboardInterrupt:
            sim.terminate()
            sim.wait()
    finally:
        csms.terminate()
        try:
            csms.wait(5)
        except subprocess.TimeoutExpired:
            csms.kill()


if __name__ == "__main__":
    main()
