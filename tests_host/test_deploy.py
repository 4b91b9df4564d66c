"""Deploying to a board. No board is reachable from CI, so this checks what can be checked: the
file list and the mpremote commands `make deploy DRY_RUN=1` prints, that host-only files stay
home, package.json (for mip) against lib/ocpp, and firmware/manifest.py (frozen builds) against
the tree."""
import json
import os
import subprocess
import sys

import pytest

import hwsupport

REPO = hwsupport.REPO
sys.path.insert(0, os.path.join(REPO, "tools"))
import deploy  # noqa: E402
import mkpackage  # noqa: E402


def make_deploy(*args):
    return subprocess.run(["make", "-s", "deploy", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def dry_run():
    r = make_deploy("DRY_RUN=1", "PORT=/dev/ttyUSB0", "BOARD=esp32_devkitc")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def listed(out):
    return [line.split()[0] for line in out.splitlines() if line.startswith("  /")]


def test_dry_run_lists_the_device_files(dry_run):
    files = listed(dry_run)
    for f in ("/main.py", "/boards/esp32_devkitc.mpy", "/lib/ocpp/api.mpy", "/lib/ocpp/ws.mpy",
              "/lib/charger.mpy", "/lib/settings.mpy", "/lib/debug.mpy", "/lib/startup.mpy",
              "/lib/memstat.mpy", "/lib/hal/pilot.mpy",
              "/lib/hal/meter.mpy", "/lib/hal/relay.mpy", "/lib/hal/rfid.mpy",
              "/lib/hal/wifi.mpy", "/lib/hal/hardware.mpy", "/settings.example.json"):
        assert f in files, f
    # Compiled, except main.py, which MicroPython runs only from source, and the viper module,
    # whose machine code the board compiles for its own architecture.
    assert all(f.endswith(".mpy") for f in files if f not in ("/main.py", "/lib/ocpp/_xor.py",
                                                             "/settings.example.json"))
    assert "/lib/ocpp/_xor.py" in files
    # Host-only files and the other boards stay home; settings.json is never overwritten.
    for f in files:
        assert "simmachine" not in f and "console" not in f, f
        assert not f.startswith("/boards/") or f == "/boards/esp32_devkitc.mpy"
        assert "manifest" not in f and f != "/settings.json"
    assert len(files) == len(set(files))


def test_every_library_module_is_deployed(dry_run):
    files = set(listed(dry_run))
    for dirpath, _, filenames in os.walk(os.path.join(REPO, "lib", "ocpp")):
        for f in filenames:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), os.path.join(REPO, "lib"))
                name = "/lib/" + rel[:-3].replace(os.sep, "/")
                assert name + ".mpy" in files or name + ".py" in files


def test_dry_run_prints_one_mpremote_command(dry_run):
    cmds = [line for line in dry_run.splitlines() if line.startswith("(dry run) $")]
    assert len(cmds) == 1
    cmd = cmds[0]
    assert "cd build/deploy/esp32_devkitc && " in cmd
    assert ("mpremote connect /dev/ttyUSB0 fs cp -r boards lib main.py settings.example.json :"
            " + reset") in cmd


def test_staged_tree_mirrors_the_board(dry_run):
    stage = os.path.join(REPO, "build", "deploy", "esp32_devkitc")
    on_disk = set()
    for dirpath, _, filenames in os.walk(stage):
        for f in filenames:
            rel = os.path.relpath(os.path.join(dirpath, f), stage)
            on_disk.add("/" + rel.replace(os.sep, "/"))
    assert on_disk == set(listed(dry_run))


def test_settings_and_clean_options():
    cmds = deploy.commands("/dev/ttyACM0", "/nonexistent", settings="my.json", clean=True)
    assert cmds[0][-4:] == ["rm", "-r", ":lib", ":boards"]
    tail = cmds[1][cmds[1].index(":"):]
    assert tail[:4] == [":", "+", "fs", "cp"] and tail[-3:] == [":settings.json", "+", "reset"]


def test_pico_w_board():
    r = make_deploy("DRY_RUN=1", "PORT=/dev/ttyACM0", "BOARD=pico_w")
    assert r.returncode == 0, r.stderr
    assert "/boards/pico_w.mpy" in listed(r.stdout)
    assert "/boards/esp32_devkitc.mpy" not in listed(r.stdout)


@pytest.mark.parametrize("args,expect", [
    (["PORT=/dev/ttyUSB0", "BOARD=host"], "BOARD=host: not a board file"),
    (["PORT=/dev/ttyUSB0", "BOARD=nope"], "BOARD=nope: not a board file"),
    (["BOARD=pico_w"], "looks like a TCP port"),  # PORT defaults to the simulator's 9000
])
def test_bad_arguments_are_refused(args, expect):
    r = make_deploy("DRY_RUN=1", *args)
    assert r.returncode != 0 and expect in r.stderr


def test_package_json_installs_the_library():
    with open(os.path.join(REPO, "package.json")) as f:
        pkg = json.load(f)
    assert pkg == mkpackage.package(), "package.json is stale: run `make package`"
    for dest, src in pkg["urls"]:
        assert dest.startswith("ocpp/") and src == "lib/" + dest
        assert os.path.exists(os.path.join(REPO, src))


def test_manifest_freezes_the_device_files():
    calls = []
    ns = {name: (lambda name: lambda *a, **k: calls.append((name, a, k)))(name)
          for name in ("include", "require", "package", "module", "freeze")}
    path = os.path.join(REPO, "firmware", "manifest.py")
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), ns)
    here = os.path.dirname(path)
    frozen = []
    for kind, a, k in calls:
        base = os.path.normpath(os.path.join(here, k.get("base_path", ".")))
        if kind == "package":
            target = os.path.join(base, a[0])
            assert os.path.isdir(target), target
            for f in k.get("files") or []:
                assert os.path.exists(os.path.join(target, f)), f
                frozen.append(os.path.join(a[0], f))
            frozen.append(a[0] + "/")
        elif kind == "module":
            assert os.path.exists(os.path.join(base, a[0])), a[0]
            frozen.append(a[0])
    assert {"ocpp/", "hal/", "charger.py", "settings.py", "debug.py"} <= set(frozen)
    # Every module of firmware/ a board imports (all but main.py and the host-only ones): a
    # frozen firmware without one does not start.
    for f in os.listdir(here):
        if f.endswith(".py") and f not in ("main.py", "manifest.py", "console.py"):
            assert f in frozen, f
    assert not any("simmachine" in f or "console" in f or "host" in f for f in frozen)
    assert ("require", ("aiorepl",), {}) in calls
