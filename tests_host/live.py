"""Fixtures for tests that run the firmware on MicroPython (tools/sim) against the local central
system (tools/csms.py): `central` and `sim`. Import them into a test module by name."""
import pytest

from harness import Csms, Sim


@pytest.fixture
def central(tmp_path):
    with Csms("--ping-interval", "0", workdir=tmp_path) as c:
        yield c
        # The central system answers a schema-invalid message with a CALLERROR: there must be
        # none (answers to the garbage a test sends itself are CALLERRORs from the charger).
        bad = [ln for ln in c.lines if ln.get("dir") == "tx" and isinstance(ln.get("msg"), list)
               and ln["msg"][0] == 4]
        assert not bad, bad


@pytest.fixture
def sim(central, tmp_path):
    with Sim(central.url, "CP1", state=str(tmp_path / "flash"), workdir=tmp_path) as s:
        s.wait_status(lambda st: st["accepted"])
        yield s


def conn(status, i=0):
    return status["connectors"][i]


def statuses(central, cid=1, since=0):
    """The StatusNotification statuses the central system received for a connector."""
    return [m["msg"][3]["status"] for m in central.lines[since:]
            if m.get("dir") == "rx" and isinstance(m.get("msg"), list) and m["msg"][0] == 2
            and m["msg"][2] == "StatusNotification" and m["msg"][3]["connectorId"] == cid]


def wait_status_sent(central, status, cid=1, since=0, timeout=10):
    """Wait until the central system received StatusNotification(status) for connector cid."""
    return central.wait_for(
        lambda m: m.get("dir") == "rx" and isinstance(m.get("msg"), list) and m["msg"][0] == 2
        and m["msg"][2] == "StatusNotification" and m["msg"][3]["connectorId"] == cid
        and m["msg"][3]["status"] == status, timeout=timeout, since=since)["msg"][3]


def call(central, action, payload=None):
    return central.call("CP1", action, payload or {})


def configure(central, **kv):
    """ChangeConfiguration for each key (True/False as "true"/"false"); each must be Accepted."""
    for k, v in kv.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        assert call(central, "ChangeConfiguration", {"key": k, "value": str(v)})["status"] == \
            "Accepted", k


def charging(central, sim, tag="CARD1", cid=1):
    """The reusable state Charging: plugged, authorised, transaction running."""
    mark = central.mark()
    sim.send("plug %d" % cid)
    sim.send("card %d %s" % (cid, tag))
    s = sim.wait_status(lambda s: conn(s, cid - 1)["status"] == "Charging"
                        and conn(s, cid - 1)["transaction"])
    wait_status_sent(central, "Charging", cid, since=mark)  # the central system knows it too
    return conn(s, cid - 1)["transaction"]


def rx_after(central, action, mark, timeout=10):
    """The first CALL of `action` the central system received after `mark`."""
    return central.wait_for(lambda m: m.get("dir") == "rx" and isinstance(m.get("msg"), list)
                            and m["msg"][0] == 2 and m["msg"][2] == action,
                            timeout=timeout, since=mark)["msg"]
