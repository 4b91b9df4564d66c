# Host tests import OUR lib/ocpp, never the unrelated PyPI package "ocpp" installed in .venv.
import os
import sys
import types

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")
if sys.path[0] != LIB:
    sys.path.insert(0, LIB)
for _name in [m for m in sys.modules if m == "ocpp" or m.startswith("ocpp.")]:
    if not (getattr(sys.modules[_name], "__file__", None) or "").startswith(LIB):
        del sys.modules[_name]
if not os.path.exists(os.path.join(LIB, "ocpp", "__init__.py")):
    # Without __init__.py, lib/ocpp would only be a namespace portion and the installed regular
    # package would win whatever sys.path says; so register ours explicitly.
    _pkg = types.ModuleType("ocpp")
    _pkg.__path__ = [os.path.join(LIB, "ocpp")]
    sys.modules["ocpp"] = _pkg


import pytest  # noqa: E402


@pytest.fixture
def csms(monkeypatch, tmp_path):
    """The in-process fake central system (fakecsms.py) with the store in a temp folder. Every
    message the charge point sends it is checked against the official schemas; a schema-invalid
    one fails the test here."""
    from fakecsms import FakeCsms
    from ocpp import store

    monkeypatch.setattr(store, "dir", str(tmp_path))
    c = FakeCsms()
    c.install(monkeypatch)
    yield c
    assert not c.schema_errors, c.schema_errors
