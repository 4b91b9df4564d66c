# settings.json on the device: Wi-Fi, the central system, the charge point's identity, the board.
# A missing or malformed file is reported clearly and the defaults stand in, so the charger never
# crash-loops on a typo.
import json

DEFAULTS = {
    "csms_url": "ws://127.0.0.1:9000",
    "cp_id": "CP1",
    "auth_key": "",
    "ca_file": "",
    "board": "host",
    "connectors": 1,
    "vendor": "OpenOCPP",
    "model": "MicroCharger",
    "serial": "",
    "wifi_ssid": "",
    "wifi_password": "",
}


def load(path="settings.json", log=print):
    s = dict(DEFAULTS)
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError:
        log("settings: %s not found; using defaults" % path)
        return s
    except ValueError as e:
        log("settings: %s is not valid JSON (%s); using defaults" % (path, e))
        return s
    if not isinstance(data, dict):
        log("settings: %s must hold a JSON object; using defaults" % path)
        return s
    for k, v in data.items():
        if k not in DEFAULTS:
            log("settings: unknown key %s ignored" % k)
        elif type(v) is not type(DEFAULTS[k]):
            log("settings: %s must be a %s; default kept" % (k, type(DEFAULTS[k]).__name__))
        else:
            s[k] = v
    return s
