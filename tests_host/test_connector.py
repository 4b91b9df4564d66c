"""Unit tests of the connector state machine (the nine ChargePointStatus values derived from the
inputs), the configuration rules that need no engine, and the meter-value selection."""
import pytest

from ocpp import api, config, connector
from ocpp.connector import Connector, Transaction

INFO = {"vendor": "V", "model": "M", "connectors": 2}
CS = {"url": "ws://x", "cp_id": "CP"}


class FakeCp:
    def __init__(self):
        self.changes = []
        self.connectors = []

    def status_changed(self, c):
        self.changes.append((c.id, c.status, c.error_code))


@pytest.fixture
def c():
    cp = FakeCp()
    cp.connectors = [Connector(cp, 0), Connector(cp, 1)]
    for x in cp.connectors:
        x.update()
    cp.changes.clear()
    return cp.connectors[1]


def tx(started=True):
    t = Transaction(1, "TAG", 0, "2026-01-01T00:00:00Z")
    t.start_done = started
    t.id = 5 if started else None
    return t


def test_available_preparing_charging_suspended_finishing(c):
    assert c.status == "Available"
    c.event(connector.EV_PLUGGED)
    assert c.status == "Preparing"
    c.tx = tx(started=False)
    c.update()
    assert c.status == "Preparing"  # incipient: StartTransaction not answered yet
    c.tx = tx()
    c.update()
    assert c.status == "SuspendedEV"  # plugged, not drawing
    c.event(connector.EV_CHARGING)
    assert c.status == "Charging"
    c.event(connector.EVSE_SUSPENDED)
    assert c.status == "SuspendedEVSE"
    c.event(connector.EVSE_RESUMED)
    c.event(connector.EV_SUSPENDED)
    assert c.status == "SuspendedEV"
    c.tx = None
    c.finishing = True
    c.update()
    assert c.status == "Finishing"
    c.event(connector.EV_UNPLUGGED)
    assert c.status == "Available"
    assert [s for _, s, _ in c.cp.changes] == [
        "Preparing", "SuspendedEV", "Charging", "SuspendedEVSE", "Charging", "SuspendedEV",
        "Finishing", "Available"]


def test_authorized_without_plug_is_preparing(c):
    c.authorized_tag = "T"
    c.update()
    assert c.status == "Preparing"


def test_fault_dominates_and_clears_back(c):
    c.event(connector.EV_PLUGGED)
    c.event(connector.FAULT, "HighTemperature")
    assert (c.status, c.error_code) == ("Faulted", "HighTemperature")
    c.event(connector.FAULT, "NotACode")
    assert c.error_code == "OtherError"
    c.event(connector.FAULT_CLEARED)
    assert (c.status, c.error_code) == ("Preparing", "NoError")


def test_unavailable_connector_and_charger(c):
    c.operative = False
    c.update()
    assert c.status == "Unavailable"
    c.operative = True
    c.cp.connectors[0].operative = False  # connector 0: the whole charger
    c.update()
    assert c.status == "Unavailable"
    c.tx = tx()
    c.plugged = c.drawing = True
    c.update()
    assert c.status == "Charging"  # a running transaction is never cut by availability


def test_unplug_during_transaction_says_why(c):
    c.event(connector.EV_PLUGGED)
    c.tx = tx()
    c.event(connector.EV_UNPLUGGED)
    assert c.status == "SuspendedEV" and c.info == "EV side disconnected"
    c.event(connector.EV_PLUGGED)
    assert c.info is None


def test_reboot_required_keys_answer_reboot_required(tmp_path, monkeypatch):
    from ocpp import store

    monkeypatch.setattr(store, "dir", str(tmp_path))
    cfg = config.Config(print)
    cfg.add(dict(Flux=config.row(config.INT, "1", 10, config.REBOOT)))
    assert cfg.change("Flux", "5") == "RebootRequired"
    assert cfg.get("Flux") == 5
    again = config.Config(print)
    again.add(dict(Flux=config.row(config.INT, "1", 10, config.REBOOT)))
    assert again.get("Flux") == 5  # persisted, for the next boot


def test_meter_value_selection_units_and_phases(tmp_path, monkeypatch):
    from ocpp import store

    monkeypatch.setattr(store, "dir", str(tmp_path))
    readings = {"Energy.Active.Import.Register": 1234.7, "Current.Import.L2": 15.5,
                "Voltage": 230, "Power.Active.Import": 3565.0, "SoC": None}

    cp = api.init(INFO, CS, lambda r, c, m: readings.get(m) if r == api.GET_METER_VALUE else 0)
    assert cp.config.change(
        "MeterValuesSampledData",
        "Energy.Active.Import.Register,Current.Import.L2,Voltage,Power.Active.Import,SoC",
    ) == "Accepted"
    mv = cp.sample(1, "Sample.Periodic", "MeterValuesSampledData")
    sv = {(v["measurand"], v.get("phase")): v for v in mv["sampledValue"]}
    assert sv[("Energy.Active.Import.Register", None)]["value"] == "1234"  # whole Wh
    assert sv[("Energy.Active.Import.Register", None)]["unit"] == "Wh"
    assert sv[("Current.Import", "L2")]["unit"] == "A"
    assert sv[("Voltage", None)]["unit"] == "V"
    assert sv[("Power.Active.Import", None)]["unit"] == "W"
    assert ("SoC", None) not in sv  # the meter cannot read it: left out, not invented
    assert all(v["context"] == "Sample.Periodic" for v in mv["sampledValue"])
    assert cp.sample(1, "Sample.Periodic", "StopTxnSampledData") is None  # empty key


def test_plug_and_unplug_collect_garbage_on_micropython(c, monkeypatch):
    # What a transaction keeps is made around these events: collected first, the heap puts it
    # low instead of splitting its largest free block. Other events do not collect.
    calls = []
    monkeypatch.setattr(connector, "MICROPYTHON", True)
    monkeypatch.setattr(connector.gc, "collect", lambda: calls.append(1))
    c.event(connector.EV_PLUGGED)
    assert len(calls) == 1
    c.event(connector.EV_CHARGING)
    c.event(connector.EV_SUSPENDED)
    c.event(connector.FAULT, "GroundFailure")
    assert len(calls) == 1
    c.event(connector.EV_UNPLUGGED)
    assert len(calls) == 2
