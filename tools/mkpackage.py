#!/usr/bin/env python3
"""Write package.json, the manifest `mpremote mip install github:OWNER/REPO` reads: every .py of
lib/ocpp, installed as /lib/ocpp/... on the board (mip's default target). `make package` runs it;
tests_host/test_deploy.py fails when package.json and lib/ocpp disagree."""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = "0.1.0"


def urls():
    top = os.path.join(ROOT, "lib")
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(top, "ocpp")):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(filenames):
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), top).replace(os.sep, "/")
                out.append([rel, "lib/" + rel])
    return sorted(out)


def package():
    return {"urls": urls(), "deps": [], "version": VERSION}


def main():
    p = package()
    lines = ",\n".join("    " + json.dumps(u) for u in p["urls"])
    with open(os.path.join(ROOT, "package.json"), "w") as f:
        f.write('{\n  "urls": [\n%s\n  ],\n  "deps": [],\n  "version": "%s"\n}\n'
                % (lines, p["version"]))


if __name__ == "__main__":
    main()
