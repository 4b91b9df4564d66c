"""Board files (boards/) and their check at start-up (firmware/hal/boardcheck.py): every shipped
board passes; a pin used twice, a missing required field, an unknown field or a value out of
range is refused with a message naming the field; and on the MicroPython unix port a broken board
or settings file stops start-up with that message instead of a traceback or a crash loop."""
import copy
import importlib
import json
import os
import subprocess
import types

import pytest

import hwsupport
from hal.boardcheck import BoardError, check

SHIPPED = sorted(f[:-3] for f in os.listdir(os.path.join(hwsupport.REPO, "boards"))
                 if f.endswith(".py"))


def board(name):
    return importlib.import_module("boards." + name)


def copy_of(name):
    """A mutable copy of a shipped board, as a module-like object."""
    src = board(name)
    b = types.SimpleNamespace()
    for k in dir(src):
        if k.isupper():
            setattr(b, k, copy.deepcopy(getattr(src, k)))
    b.CONNECTORS = [dict(c) for c in b.CONNECTORS]
    return b


def errors(b):
    with pytest.raises(BoardError) as e:
        check(b)
    return str(e.value)


def test_the_shipped_boards():
    assert {"host", "esp32_devkitc", "pico_w"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_board_passes(name):
    check(board(name))


@pytest.mark.parametrize("name", SHIPPED)
def test_board_files_are_data_only(name):
    # No functions, classes or imports in a board file: names bound to plain data only.
    src = board(name)
    for k in dir(src):
        if not k.startswith("__"):
            v = getattr(src, k)
            assert isinstance(v, (str, int, float, bool, tuple, list, dict, range, type(None))), k


def test_pin_used_twice_names_both_fields():
    b = copy_of("esp32_devkitc")
    b.CONNECTORS[0]["led"] = b.CONNECTORS[0]["relay"]
    msg = errors(b)
    assert "CONNECTORS[0].led: pin 26 is used twice (also CONNECTORS[0].relay)" in msg


def test_pin_shared_with_the_rfid_reader():
    b = copy_of("pico_w")
    b.RFID = dict(b.RFID, cs=b.CONNECTORS[0]["relay_feedback"])
    assert "CONNECTORS[0].relay_feedback: pin 14 is used twice (also RFID.cs)" in errors(b)


def test_ct_pin_twice_across_phases():
    b = copy_of("esp32_devkitc")
    cts = [dict(ct) for ct in b.CONNECTORS[0]["ct"]]
    cts[2]["adc"] = cts[0]["adc"]
    b.CONNECTORS[0]["ct"] = tuple(cts)
    assert "CONNECTORS[0].ct[2].adc: pin 36 is used twice (also CONNECTORS[0].ct[0].adc)" in \
        errors(b)


@pytest.mark.parametrize("field", ["relay", "pilot_pwm", "pilot_adc", "pilot_cal", "ct",
                                   "voltage", "phases", "max_current_a"])
def test_missing_required_connector_field(field):
    b = copy_of("pico_w")
    del b.CONNECTORS[0][field]
    assert "CONNECTORS[0].%s: missing" % field in errors(b)


@pytest.mark.parametrize("field", ["NAME", "MAX_CURRENT_A", "OUTPUT_PINS", "ADC_PINS",
                                   "MEASURANDS"])
def test_missing_required_board_field(field):
    b = copy_of("pico_w")
    delattr(b, field)
    assert "%s: missing" % field in errors(b)


def test_missing_lock_motor_pin():
    b = copy_of("esp32_devkitc")
    b.CONNECTORS[0]["lock"] = {"motor_a": 16}
    assert "CONNECTORS[0].lock.motor_b: missing" in errors(b)


@pytest.mark.parametrize("field,value,expect", [
    ("max_current_a", 120, "CONNECTORS[0].max_current_a: 120 is out of range 6..80"),
    ("max_current_a", 3, "CONNECTORS[0].max_current_a: 3 is out of range 6..80"),
    ("voltage", 50, "CONNECTORS[0].voltage: 50 is out of range 100..480"),
    ("phases", 4, "CONNECTORS[0].phases: 4 is out of range 1..3"),
    ("power_factor", 1.5, "CONNECTORS[0].power_factor: 1.5 is out of range 0.5..1.0"),
    ("relay_active", 2, "CONNECTORS[0].relay_active: must be 0 or 1"),
    ("pilot_cal", (60000, 2000), "CONNECTORS[0].pilot_cal: (60000, 2000): need"),
    ("pilot_cal", (30000, 32000), "CONNECTORS[0].pilot_cal: (30000, 32000): the divider"),
    ("pilot_cal", 5, "CONNECTORS[0].pilot_cal: must be"),
    ("voltage", "230", "CONNECTORS[0].voltage: must be a number"),
])
def test_value_out_of_range(field, value, expect):
    b = copy_of("pico_w")
    b.CONNECTORS[0][field] = value
    assert expect in errors(b)


def test_board_values_out_of_range():
    b = copy_of("esp32_devkitc")
    b.MAX_CURRENT_A = 100
    b.MAINS_HZ = 400
    b.RFID = dict(b.RFID, spi=9)
    msg = errors(b)
    assert "MAX_CURRENT_A: 100 is out of range 6..80" in msg
    assert "MAINS_HZ: 400 is out of range 45..65" in msg
    assert "RFID.spi: 9 is out of range 0..3" in msg


def test_ct_values():
    b = copy_of("esp32_devkitc")
    b.CONNECTORS[0]["ct"] = ({"adc": 36, "ratio": 0, "burden": 22.0},
                             {"adc": 34, "ratio": 2000},
                             {"adc": 35, "ratio": 2000, "burden": 22.0, "cal": 3})
    msg = errors(b)
    assert "CONNECTORS[0].ct[0].ratio: 0 is out of range" in msg
    assert "CONNECTORS[0].ct[1].burden: missing" in msg
    assert "CONNECTORS[0].ct[2].cal: 3 is out of range 0.5..2.0" in msg


def test_one_ct_per_phase():
    b = copy_of("esp32_devkitc")
    b.CONNECTORS[0]["phases"] = 1
    assert "CONNECTORS[0].ct: 3 CT clamps for 1 phases" in errors(b)


def test_pin_capabilities():
    b = copy_of("esp32_devkitc")
    b.CONNECTORS[0]["relay"] = 34  # input only on the ESP32
    b.CONNECTORS[0]["pilot_adc"] = 25  # ADC2: not while Wi-Fi runs
    msg = errors(b)
    assert "CONNECTORS[0].relay: pin 34 is not an output pin of board esp32_devkitc" in msg
    assert "CONNECTORS[0].pilot_adc: pin 25 is not an ADC pin of board esp32_devkitc" in msg


def test_unknown_fields_are_typos():
    b = copy_of("pico_w")
    b.CONNECTORS[0]["realy"] = 3
    b.MAX_CURRENT = 16
    msg = errors(b)
    assert "CONNECTORS[0].realy: unknown field" in msg
    assert "MAX_CURRENT: unknown field" in msg


def test_no_connectors():
    b = copy_of("pico_w")
    b.CONNECTORS = ()
    assert "CONNECTORS: missing" in errors(b)


def test_every_problem_at_once():
    b = copy_of("pico_w")
    b.CONNECTORS[0]["voltage"] = 10
    del b.CONNECTORS[0]["relay"]
    msg = errors(b)
    assert msg.startswith("board pico_w:") and "voltage" in msg and "relay: missing" in msg


# ---- start-up on the unix port with a broken board or settings file ---------------------------

MP = os.path.join(hwsupport.REPO, ".venv", "bin", "micropython")


def start(tmp_path, settings=None, board_src=None, script=None):
    if not os.path.exists(MP):
        pytest.skip("no MicroPython unix port")
    if settings is not None:
        (tmp_path / "settings.json").write_text(settings)
    paths = [os.path.join(hwsupport.FIRMWARE, "simmachine"), os.path.join(hwsupport.REPO, "lib"),
             hwsupport.FIRMWARE]
    if board_src is not None:
        (tmp_path / "boards").mkdir()
        (tmp_path / "boards" / "mine.py").write_text(board_src)
        # The host board's simulated world (behind the fake `machine`) is wired from this one.
        (tmp_path / "boards" / "host.py").write_text(
            open(os.path.join(hwsupport.REPO, "boards", "host.py")).read())
        paths.append(str(tmp_path))
    else:
        paths.append(hwsupport.REPO)
    env = dict(os.environ, MICROPYPATH=":".join(paths + [".frozen"]))
    argv = [MP, "-c", script] if script else [MP, os.path.join(hwsupport.FIRMWARE, "main.py")]
    return subprocess.run(argv, cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=30, input="")


GOOD = {"csms_url": "ws://127.0.0.1:9", "cp_id": "CP1", "board": "host"}


def test_startup_stops_on_a_bad_board_file(tmp_path):
    src = open(os.path.join(hwsupport.REPO, "boards", "pico_w.py")).read()
    src = src.replace('"relay": 15,', '"relay": 13,')  # = pilot_pwm
    r = start(tmp_path, json.dumps(dict(GOOD, board="mine", wifi_ssid="x")), src)
    assert "charger NOT started" in r.stderr
    assert "CONNECTORS[0].pilot_pwm: pin 13 is used twice (also CONNECTORS[0].relay)" in r.stderr
    assert "Traceback" not in r.stderr and r.returncode == 0  # back to the REPL, no loop


@pytest.mark.parametrize("text,expect", [
    (None, "settings.json: not found"),
    ("{not json", "settings.json: not valid JSON"),
    ("[1, 2]", "settings.json: must hold a JSON object"),
    (json.dumps(dict(GOOD, connectors="two")), "settings.json: connectors must be a int"),
    (json.dumps(dict(GOOD, csms_url="http://x")), "csms_url must be a ws:// or wss:// URL"),
    (json.dumps(dict(GOOD, cp_id="")), "settings.json: cp_id is missing"),
    (json.dumps(dict(GOOD, board="nope")), "board nope: cannot load boards/nope"),
])
def test_startup_stops_on_bad_settings(tmp_path, text, expect):
    r = start(tmp_path, text)
    assert "charger NOT started" in r.stderr and expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_device_board_needs_wifi(tmp_path):
    src = open(os.path.join(hwsupport.REPO, "boards", "pico_w.py")).read()
    r = start(tmp_path, json.dumps(dict(GOOD, board="mine")), src)
    assert "settings.json: wifi_ssid is missing" in r.stderr


# What main.py does after start-up, then which of the start-up modules are still loaded.
AFTER_START = """
import sys, gc, startup, memstat
built = startup.build(print)
del startup
gc.collect()
code = memstat.code
memstat.unload("startup", built[4])
print("LOADED", sorted(m for m in ("startup", "settings", "hal.boardcheck", "boards.mine")
                       if m in sys.modules))
print("CODE", code, memstat.code)
built[0].tick(0)  # the charger still runs without them
print("HW", built[0].hw.port(1).pilot.state)
"""


def test_startup_leaves_only_what_runs(tmp_path):
    # settings.py, the board checker, startup.py itself and the board file (its dicts are read
    # into the hardware objects) are needed once: they must not stay in the heap.
    src = open(os.path.join(hwsupport.REPO, "boards", "pico_w.py")).read()
    r = start(tmp_path, json.dumps(dict(GOOD, board="mine", wifi_ssid="x")), src, AFTER_START)
    assert "LOADED []" in r.stdout, r.stdout + r.stderr
    code = [int(x) for x in r.stdout.split("CODE ")[1].split()[:2]]
    assert code[1] < code[0]  # what was dropped no longer counts as code
    assert "HW " in r.stdout, r.stdout + r.stderr


def test_a_board_loads_only_the_drivers_it_uses(tmp_path):
    src = open(os.path.join(hwsupport.REPO, "boards", "pico_w.py")).read()
    lines = src.splitlines(keepends=True)
    src = "".join(ln for ln in lines if not ln.lstrip().startswith(("RFID", '"led"')))
    lock = src[src.index('"lock": {'):src.index("},", src.index('"lock": {')) + 2]
    src = src.replace(lock, "")
    assert "RFID" not in src and '"lock"' not in src and '"led"' not in src
    script = AFTER_START + """
print("DRIVERS", sorted(m for m in ("hal.rfid", "hal.lock", "hal.led") if m in sys.modules))
"""
    r = start(tmp_path, json.dumps(dict(GOOD, board="mine", wifi_ssid="x")), src, script)
    assert "DRIVERS []" in r.stdout, r.stdout + r.stderr
    full = tmp_path / "full"
    full.mkdir()
    r = start(full, json.dumps(dict(GOOD, board="mine", wifi_ssid="x")),
              open(os.path.join(hwsupport.REPO, "boards", "pico_w.py")).read(), script)
    assert "DRIVERS ['hal.led', 'hal.lock', 'hal.rfid']" in r.stdout, r.stdout + r.stderr


def test_the_settings_template_is_complete():
    from settings import DEFAULTS

    with open(os.path.join(hwsupport.FIRMWARE, "settings.example.json")) as f:
        example = json.load(f)
    assert set(example) <= set(DEFAULTS)
    for k in ("wifi_ssid", "wifi_password", "csms_url", "cp_id", "auth_key", "ca_file", "board"):
        assert k in example
