"""Validation of what the firmware sends against the official OCPP 1.6 JSON schemas, read as files
from the installed mobilityhouse package (never imported: its name clashes with lib/ocpp)."""
import importlib.metadata
import json
import os

import jsonschema

_DIR = str(importlib.metadata.distribution("ocpp").locate_file("ocpp/v16/schemas"))
_cache = {}


def validator(name):
    v = _cache.get(name)
    if v is None:
        with open(os.path.join(_DIR, name + ".json")) as f:
            schema = json.load(f)
        v = _cache[name] = jsonschema.Draft4Validator(schema)
    return v


def check_call(action, payload):
    """Raise jsonschema.ValidationError if a CALL from the charge point is schema-invalid."""
    validator(action).validate(payload)


def check_result(action, payload):
    """Raise if the charge point's CALLRESULT to the central system's `action` is invalid."""
    validator(action + "Response").validate(payload)


def exists(action):
    return os.path.exists(os.path.join(_DIR, action + ".json"))
