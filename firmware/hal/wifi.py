# The Wi-Fi manager: join the network from the settings, rejoin with exponential backoff (and
# jitter, so a car park full of chargers does not hammer the access point in step), and hand the
# OCPP engine a link that really works. isconnected() stays true through many failures (an access
# point that lost its uplink, a stale DHCP lease), so the link is also declared down when OCPP
# itself cannot get through: link_failed() (to be called when WebSocket pings go unanswered) or,
# failing that hook, the engine staying disconnected for _STALE_MS while the radio says all is
# well.
from ocpp.compat import Waker, const, jitter, sleep_ms, ticks_diff, ticks_ms

_JOIN_MS = const(20000)  # how long one attempt to join may take
_BACKOFF_MIN_MS = const(2000)
_BACKOFF_MAX_MS = const(120000)
_STALE_MS = const(180000)
_CHECK_MS = const(1000)


class Wifi:
    def __init__(self, ssid, password, log, pm_off=False, hostname=None, wlan=None):
        self.ssid = ssid
        self.password = password
        self.log = log
        self.pm_off = pm_off
        self.hostname = hostname
        self._wlan = wlan  # a network.WLAN, or a stand-in in tests
        self.up = False  # joined and believed to work
        self._bad = False  # told the link is broken: rejoin
        self.joins = 0
        self.backoff = _BACKOFF_MIN_MS
        self._woken = Waker()  # wait_up()'s sleep, cut short when the link comes up

    def _radio(self):
        if self._wlan is None:
            import network

            if self.hostname:
                try:
                    network.hostname(self.hostname)
                except (AttributeError, ValueError):
                    pass
            self._wlan = network.WLAN(network.STA_IF)
        return self._wlan

    def link_failed(self):
        """The link carries nothing (OCPP pings unanswered): leave and join again."""
        if self.up:
            self.log("wifi: link declared down by OCPP")
        self._bad = True
        self.up = False

    async def wait_up(self, timeout_ms):
        """True once the link is up, False after timeout_ms."""
        t0 = ticks_ms()
        try:
            while not self.up:
                left = timeout_ms - ticks_diff(ticks_ms(), t0)
                if left <= 0:
                    return False
                await self._woken.wait(left)
                self._woken.done()
        finally:
            self._woken.done()  # (cancelled asleep: wake() must not touch this task any more)
        return True

    async def _join(self):
        w = self._radio()
        w.active(True)
        if self.pm_off:
            # The Pico W's CYW43 sleeps between beacons by default; every packet then waits for
            # the next one (100s of ms), which breaks OCPP's call timeouts.
            try:
                w.config(pm=w.PM_NONE)
            except (AttributeError, ValueError, OSError):
                w.config(pm=0xA11140)  # the same, on firmwares without the constant
        try:
            w.disconnect()
        except OSError:
            pass
        self.log("wifi: joining %s" % self.ssid)
        w.connect(self.ssid, self.password)
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < _JOIN_MS:
            if w.isconnected():
                return True
            await sleep_ms(200)
        return False

    async def run(self, engine_connected=None):
        """The manager's task. engine_connected(): whether OCPP is connected now (optional)."""
        last_ok = ticks_ms()
        while True:
            w = self._radio()
            if not self._bad and w.isconnected():
                if engine_connected is None or engine_connected():
                    last_ok = ticks_ms()
                elif ticks_diff(ticks_ms(), last_ok) > _STALE_MS:
                    self.log("wifi: OCPP unreachable for %d s; rejoining" % (_STALE_MS // 1000))
                    self.link_failed()
                    continue
                if not self.up:
                    self.up = True
                    self.backoff = _BACKOFF_MIN_MS
                    self.log("wifi: up, %s" % (w.ifconfig()[0],))
                    self._woken.wake()
                await sleep_ms(_CHECK_MS)
                continue
            self.up = False
            self._bad = False
            self.joins += 1
            if await self._join():
                last_ok = ticks_ms()
                continue
            delay = jitter(self.backoff)
            self.log("wifi: join failed (status %s); retry in %d ms" % (_status(w), delay))
            await sleep_ms(delay)
            self.backoff = min(self.backoff * 2, _BACKOFF_MAX_MS)


def _status(w):
    try:
        return w.status()
    except (AttributeError, OSError):
        return "?"
