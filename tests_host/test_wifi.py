"""The Wi-Fi manager (firmware/hal/wifi.py) with a stand-in for network.WLAN: joining, power saving
off where asked, backoff between failed joins, rejoining when the association drops, and the link
declared down when OCPP cannot get through although isconnected() says all is well."""
import asyncio

import pytest

import hwsupport  # noqa: F401  (puts firmware/ on the path)
from hal import wifi
from hal.wifi import Wifi


class FakeWLAN:
    PM_NONE = 0x10

    def __init__(self, fail=0):
        self.fail = fail  # this many joins fail first
        self.connected = False
        self.joins = 0
        self.pm = None
        self.on = False

    def active(self, v=None):
        self.on = v

    def config(self, **kw):
        self.pm = kw.get("pm")

    def disconnect(self):
        self.connected = False

    def connect(self, ssid, password):
        self.joins += 1
        if self.joins > self.fail:
            self.connected = True

    def isconnected(self):
        return self.connected

    def ifconfig(self):
        return ("10.1.2.3", "255.255.255.0", "10.1.2.1", "10.1.2.1")

    def status(self):
        return -2


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    # The manager's minutes become milliseconds.
    for name, v in (("_JOIN_MS", 100), ("_BACKOFF_MIN_MS", 20), ("_BACKOFF_MAX_MS", 100),
                    ("_STALE_MS", 200), ("_CHECK_MS", 10)):
        monkeypatch.setattr(wifi, name, v)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_joins_with_power_saving_off():
    async def main():
        w = FakeWLAN()
        logs = []
        m = Wifi("net", "pw", logs.append, pm_off=True, wlan=w)
        t = asyncio.ensure_future(m.run())
        assert await m.wait_up(1000)
        t.cancel()
        return w, m, logs

    w, m, logs = run(main())
    assert w.on and w.pm == FakeWLAN.PM_NONE and m.up and w.joins == 1
    assert "wifi: up, 10.1.2.3" in logs


def test_backoff_between_failed_joins():
    async def main():
        w = FakeWLAN(fail=10 ** 6)
        logs = []
        w.connect = lambda s, p: setattr(w, "joins", w.joins + 1)  # never associates
        m = Wifi("net", "pw", logs.append, wlan=w)
        t = asyncio.ensure_future(m.run())
        assert not await m.wait_up(900)
        t.cancel()
        return w, m, logs

    w, m, logs = run(main())
    assert 2 <= w.joins <= 8
    assert m.backoff == 100  # doubled up to the maximum
    retries = [line for line in logs if "join failed" in line]
    assert retries and "status -2" in retries[0]


def test_rejoins_when_the_association_drops():
    async def main():
        w = FakeWLAN()
        m = Wifi("net", "pw", lambda s: None, wlan=w)
        t = asyncio.ensure_future(m.run())
        await m.wait_up(1000)
        w.connected = False
        await asyncio.sleep(0.1)
        t.cancel()
        return w, m

    w, m = run(main())
    assert w.joins == 2 and m.up


def test_ocpp_pings_failing_bring_the_link_down():
    async def main():
        w = FakeWLAN()
        logs = []
        m = Wifi("net", "pw", logs.append, wlan=w)
        t = asyncio.ensure_future(m.run(lambda: True))
        await m.wait_up(1000)
        m.link_failed()  # the engine's pings went unanswered
        assert not m.up
        await asyncio.sleep(0.1)
        t.cancel()
        return w, m, logs

    w, m, logs = run(main())
    assert w.joins == 2 and m.up and "wifi: link declared down by OCPP" in logs


def test_engine_stuck_offline_rejoins():
    async def main():
        w = FakeWLAN()
        logs = []
        m = Wifi("net", "pw", logs.append, wlan=w)
        t = asyncio.ensure_future(m.run(lambda: False))  # OCPP never gets through
        await m.wait_up(1000)
        await asyncio.sleep(0.5)
        t.cancel()
        return w, logs

    w, logs = run(main())
    assert w.joins >= 2
    assert any("OCPP unreachable" in line for line in logs)
