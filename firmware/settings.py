# settings.json on the device: Wi-Fi, the central system, the charge point's identity, the board.
# A missing or malformed file, or a missing required value, is reported clearly (each problem names
# the key) and start-up stops there: main.py prints the problems on the REPL and blinks the status
# LED, instead of crash-looping on a typo.
import json

DEFAULTS = {
    "csms_url": "",
    "cp_id": "",
    "auth_key": "",  # OCPP AuthorizationKey (HTTP Basic auth password)
    "ca_file": "",  # the CA certificate (PEM or DER) checking a wss:// central system
    "board": "",  # the file in boards/; empty: the only one there
    "connectors": 1,
    "vendor": "OpenOCPP",
    "model": "MicroCharger",
    "serial": "",
    "wifi_ssid": "",
    "wifi_password": "",
    "repl": True,  # the asyncio REPL on the serial port (`cp` object) while the charger runs
}


def load(path="settings.json", log=print):
    """(settings, problems): the defaults overlaid with the file, and what is wrong with it."""
    s = dict(DEFAULTS)
    problems = []
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError:
        problems.append("%s: not found (copy settings.example.json and fill it in)" % path)
        return s, problems
    except ValueError as e:
        problems.append("%s: not valid JSON (%s)" % (path, e))
        return s, problems
    if not isinstance(data, dict):
        problems.append("%s: must hold a JSON object" % path)
        return s, problems
    for k, v in data.items():
        if k not in DEFAULTS:
            log("settings: unknown key %s ignored" % k)
        elif type(v) is not type(DEFAULTS[k]):
            problems.append("%s: %s must be a %s" % (path, k, type(DEFAULTS[k]).__name__))
        else:
            s[k] = v
    url = s["csms_url"]
    if not (url.startswith("ws://") or url.startswith("wss://")):
        problems.append("%s: csms_url must be a ws:// or wss:// URL" % path)
    if not s["cp_id"]:
        problems.append("%s: cp_id is missing" % path)
    if s["connectors"] < 1:
        problems.append("%s: connectors must be at least 1" % path)
    return s, problems


def check_device(s, path="settings.json"):
    """What a real board needs on top: a network to join, a CA when the URL is wss://."""
    problems = []
    if not s["wifi_ssid"]:
        problems.append("%s: wifi_ssid is missing" % path)
    if s["csms_url"].startswith("wss://") and s["ca_file"]:
        try:
            open(s["ca_file"]).close()
        except OSError:
            problems.append("%s: ca_file %s not found" % (path, s["ca_file"]))
    return problems
