#!/usr/bin/env python3
"""Put the charger on a board: `make deploy PORT=/dev/ttyUSB0 BOARD=esp32_devkitc`.

The .mpy files compiled by `make mpy` (build/) are laid out as the board's flash wants them in
build/deploy/BOARD/, then copied with one mpremote command, which compares each file's SHA-256
with the board's copy and skips those that did not change; the board is reset at the end.

  /main.py                  firmware/main.py (MicroPython runs main.py only from source)
  /lib/ocpp/...             the OCPP library (lib/ocpp)
  /lib/hal/..., /lib/*.mpy  the device application (firmware/, without the host-only files)
  /boards/BOARD.mpy         the one board file
  /settings.example.json    the settings template; settings.json itself only with SETTINGS=file

--dry-run (DRY_RUN=1) prints the file list and the commands without touching a board: a board
cannot be reached from CI, so that is what the tests check.
"""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
# Files of firmware/ that only the host simulator uses (memstat.py goes: main.py imports it).
HOST_ONLY = ("console.py", "simmachine")
NATIVE_SOURCE = ("_xor.py",)  # shipped as .py: build/ holds its x64 code for the unix port


def device_files(board):
    """[(source in the repo or build/, path on the board)], sorted by board path."""
    out = []
    for base, dest in (("lib", "lib"), ("firmware", "lib")):
        top = os.path.join(ROOT, base)
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, top)
            if rel.split(os.sep)[0] in HOST_ONLY or "__pycache__" in rel:
                continue
            for f in filenames:
                if not f.endswith(".py") or (rel == "." and f in HOST_ONLY):
                    continue
                if base == "firmware" and rel == "." and f in ("main.py", "manifest.py"):
                    continue
                if f in NATIVE_SOURCE:
                    # Viper machine code is per architecture: the board compiles the source itself.
                    out.append((os.path.join(dirpath, f), _join(dest, rel, f)))
                    continue
                mpy = f[:-3] + ".mpy"
                src = os.path.join(BUILD, base, rel, mpy) if rel != "." else os.path.join(
                    BUILD, base, mpy)
                out.append((os.path.normpath(src), _join(dest, rel, mpy)))
    out.append((os.path.join(BUILD, "boards", board + ".mpy"), "boards/%s.mpy" % board))
    out.append((os.path.join(ROOT, "firmware", "main.py"), "main.py"))
    out.append((os.path.join(ROOT, "firmware", "settings.example.json"),
                "settings.example.json"))
    return sorted(out, key=lambda x: x[1])


def _join(*parts):
    return "/".join(p for p in parts if p and p != ".").replace(os.sep, "/")


def commands(port, stage, settings=None, clean=False):
    mp = os.path.join(ROOT, ".venv", "bin", "mpremote")
    cmds = []
    if clean:  # a stale .py on the board would shadow the new .mpy of the same name
        cmds.append([mp, "connect", port, "fs", "rm", "-r", ":lib", ":boards"])
    cp = [mp, "connect", port, "fs", "cp", "-r"]
    cp += sorted(os.listdir(stage)) if os.path.isdir(stage) else ["boards", "lib", "main.py",
                                                                   "settings.example.json"]
    cp.append(":")
    if settings:
        cp += ["+", "fs", "cp", os.path.abspath(settings), ":settings.json"]
    cp += ["+", "reset"]
    cmds.append(cp)
    return cmds


def stage_files(files, stage):
    if os.path.isdir(stage):
        shutil.rmtree(stage)
    for src, dest in files:
        path = os.path.join(stage, dest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(src, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyUSB0")
    ap.add_argument("--board", required=True, help="a file of boards/, e.g. esp32_devkitc")
    ap.add_argument("--settings", help="a settings.json to put on the board as well")
    ap.add_argument("--clean", action="store_true", help="remove /lib and /boards first")
    ap.add_argument("--dry-run", action="store_true", help="print what would be done")
    a = ap.parse_args()
    if a.port.isdigit():
        ap.error("PORT=%s looks like a TCP port; give the serial port: PORT=/dev/ttyUSB0" % a.port)
    if a.board == "host" or not os.path.exists(os.path.join(ROOT, "boards", a.board + ".py")):
        names = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "boards"))
                       if f.endswith(".py") and f != "host.py")
        ap.error("BOARD=%s: not a board file; one of: %s" % (a.board, ", ".join(names)))
    files = device_files(a.board)
    missing = [src for src, _ in files if not os.path.exists(src)]
    if missing:
        sys.exit("deploy: not compiled: %s (run `make mpy`)" % ", ".join(missing))
    stage = os.path.join(BUILD, "deploy", a.board)
    stage_files(files, stage)
    print("files for board %s (%d, staged in %s):" % (a.board, len(files),
                                                      os.path.relpath(stage, ROOT)))
    for src, dest in files:
        print("  %-40s <- %s" % ("/" + dest, os.path.relpath(src, ROOT)))
    cmds = commands(a.port, stage, a.settings, a.clean)
    for c in cmds:
        print("%s$ cd %s && %s" % ("(dry run) " if a.dry_run else "", os.path.relpath(stage, ROOT),
                                   " ".join(c)))
    if a.dry_run:
        return
    for i, c in enumerate(cmds):
        rc = subprocess.call(c, cwd=stage)
        if rc and not (a.clean and i == 0):  # nothing to remove on a fresh board is fine
            sys.exit("deploy: %s failed (%d)" % (c[4] if len(c) > 4 else c[0], rc))


if __name__ == "__main__":
    main()
