"""The check scripts of tests_host/ (mp_*_check.py) run on the MicroPython unix port over the
library's sources: the same code as the CPython tests, on the other runtime."""
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(REPO, ".venv", "bin", "micropython")


def run(script, *args, heap=None, cwd=None, timeout=60):
    """tests_host/<script> with args, lib/ first on MicroPython's path -> the CompletedProcess
    (text). Skips the test where the unix port is not installed."""
    if not os.path.exists(MICROPYTHON):
        pytest.skip("no MicroPython unix port")
    argv = [MICROPYTHON] + (["-X", "heapsize=" + heap] if heap else [])
    argv += [os.path.join(REPO, "tests_host", script)] + [str(a) for a in args]
    env = dict(os.environ, MICROPYPATH=os.path.join(REPO, "lib") + ":.frozen")
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
