# The engine: one cooperative asyncio loop that keeps a connection to the central system, boots,
# sends Heartbeats, StatusNotifications and the queued transaction messages, and answers the
# central system's CALLs through the handler table of core.py.
import asyncio
import gc
import sys

from . import clock, metering, store, ws
from .auth import Cache
from .compat import Waker, const, jitter, sleep_ms, ticks_diff, ticks_ms
from .config import Config
from .connector import Connector
from .core import HANDLERS, KNOWN
from .rpc import CallError, Offline, Rpc, Timeout
from .txqueue import TxQueue

_BACKOFF_MIN_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_DEFAULT_RETRY_S = const(30)
_SETTLE_MS = const(200)
_EMPTY = b"{}"  # the payload of Heartbeat, as its JSON text: rpc copies it into the frame
_AVAILABILITY = "availability.json"  # the connectors set Inoperative (§5.2), across reboots


def _log(msg):
    print(msg, file=sys.stderr)


class ChargePoint:
    def __init__(self, info, csms, callback, log=None):
        self.info = info
        self.csms = csms
        self.callback = callback
        self.log = log or _log
        n = info.get("connectors", 1)
        self.config = Config(self.log, info.get("measurands"), {"NumberOfConnectors": n})
        self.config.on_change = self._config_changed
        key = csms.get("auth_key")
        if key and not self.config.changed.get("AuthorizationKey"):
            self.config.fixed["AuthorizationKey"] = key
        self.connectors = [Connector(self, i) for i in range(n + 1)]  # [0] = the charger
        self.auth_cache = Cache(self)
        self.local_list = None  # set by the LocalAuthListManagement profile when enabled
        self.vendors = {}  # vendorId -> DataTransfer handler (api's data_transfer_handler())
        handlers = HANDLERS(self)
        # Optional profiles (lib/ocpp/profiles/<name>.py) are imported only when the integrator
        # names them, so a charger pays for what it uses. Each module has PROFILE (its
        # SupportedFeatureProfiles name) and setup(cp) -> its handler table, which may add
        # configuration keys with cp.config.add().
        names = ["Core"]
        for name in info.get("profiles", ()):
            mod = __import__("ocpp.profiles." + name, None, None, ("setup",))
            handlers.update(mod.setup(self))
            names.append(mod.PROFILE)
        self.config.fixed["SupportedFeatureProfiles"] = ",".join(names)
        self.rpc = Rpc(handlers, self.log)
        self.call = self.rpc.call  # call(action, payload, timeout_ms) -> answer payload
        self.rpc.known = KNOWN
        if csms.get("call_timeout_ms"):
            self.rpc.timeout_ms = csms["call_timeout_ms"]
        self.txq = TxQueue(self)
        self.connected = False
        self.registration = None  # BootNotification status: None, Pending, Rejected, Accepted
        self.ws = None
        self.on_link_down = None  # integrator hook: pings went unanswered
        self._wake = Waker()  # the outbox's sleep
        self._status_wait = 0  # see _next_status()
        self._ping_wake = Waker()  # the pinger's
        self._task = None
        self.aligned_task = None  # metering.aligned(), while ClockAlignedDataInterval > 0
        self.sampling = {}  # configuration key -> (its value, its items parsed): metering.py
        self.meter_wakers = []  # the metering tasks' sleeps, cut short by metering.wake()
        self.ca = None

    # ---- life cycle -------------------------------------------------------------------------

    def start(self):
        """Start the engine task; call from inside a running asyncio loop."""
        self._restore_availability()
        # Transactions that were running at a power cut end now (StopTransaction PowerLoss).
        self.txq.recover()
        for c in self.connectors:
            c.update()
        self._task = asyncio.create_task(self.run())
        metering.align(self)
        return self._task

    async def stop(self):
        """Stop the engine and close the connection cleanly (close code 1000)."""
        if self._task:
            self._task.cancel()
            self._task = None
            if self.aligned_task is not None:
                self.aligned_task.cancel()
                self.aligned_task = None
        sock = self.ws
        if sock is not None:
            await sock.close(1000)

    async def run(self):
        backoff = _BACKOFF_MIN_MS
        url = self.csms["url"].rstrip("/") + "/" + self.csms["cp_id"]
        while True:
            try:
                key = self.config.get("AuthorizationKey")
                auth = (self.csms["cp_id"], key) if key else None
                sock = await ws.connect(
                    url, "ocpp1.6", auth, self._cadata(), self.csms.get("max_message", 8192)
                )
            except Exception as e:  # WSError, OSError: anything short of a bug is a retry
                # A connect that timed out can leave MicroPython's socket open until collected.
                gc.collect()
                backoff = await self._backoff(backoff, "connect failed (%s)" % e)
                continue
            self.log("engine: connected to " + url)
            self.ws = sock
            self.rpc.attach(sock)
            self.connected = True
            helpers = (asyncio.create_task(self._outbox()), asyncio.create_task(self._pinger()))
            why = "disconnected"
            try:
                # The connection's one coroutine, awaited here rather than wrapped in one of
                # ours (~250 bytes for the connection's life): serve() answers each message as
                # it comes.
                await sock.serve(self.rpc.handle)
            except ws.WSClosed as e:
                why = "connection closed (%s %s)" % (e.code, e.reason)
            except (OSError, ws.WSError) as e:
                why = "connection lost (%r)" % e
            except Exception as e:  # a bug, or no memory: reconnect rather than stop for good
                why = "reader failed (%r)" % e
            finally:
                for t in helpers:
                    t.cancel()
                self.connected = False
                self.rpc.detach()
                self.ws = None
                await sock.close()
            if self.registration == "Accepted":
                backoff = _BACKOFF_MIN_MS  # the link worked; start the backoff anew
            backoff = await self._backoff(backoff, why)

    async def _backoff(self, ms, why):
        # A sleep of about ms before the next connect -> the backoff after that: twice as long.
        delay = jitter(ms)
        self.log("engine: %s; reconnect in %d ms" % (why, delay))
        await sleep_ms(delay)
        return min(ms * 2, _BACKOFF_MAX_MS)

    def _cadata(self):
        path = self.csms.get("ca_file")
        if not path or not self.csms["url"].startswith("wss"):
            return None
        if self.ca is None:
            with open(path, "rb") as f:
                data = f.read()
            if b"-----BEGIN" in data:  # PEM -> DER: MicroPython's ssl loads DER only
                import binascii

                body = data.split(b"-----")[2]
                data = binascii.a2b_base64(body.replace(b"\n", b"").replace(b"\r", b""))
            self.ca = data
        return self.ca

    async def _pinger(self):
        # Dead-link detection (OCPP-J §5.3, errata 3.9): ping every WebSocketPingInterval and
        # close when nothing at all came back for two intervals. A change of the interval wakes
        # us (_config_changed), so it takes effect at once without polling for it.
        try:
            while await self._ping_round():
                pass
        finally:
            self._ping_wake.done()

    async def _ping_round(self):
        # -> False when the link is gone.
        interval = self.config.get("WebSocketPingInterval")
        # Checked every 5 s at most, so that the link goes about two intervals after it fell
        # silent; with no pings, asleep until the interval changes.
        await self._ping_wake.wait(min(interval * 1000, 5000) if interval > 0 else 3600000)
        if self._ping_wake.done() or interval <= 0:
            return True  # the interval changed: start over with the new one
        sock = self.ws
        if sock is None:
            return False
        silent = ticks_diff(ticks_ms(), sock.last_rx)
        if silent > (2 * interval + 1) * 1000:
            self.log("engine: no answer for %d s; dropping the link" % (silent // 1000))
            if self.on_link_down is not None:
                # The network layer may know better than TCP (a Wi-Fi that says it is up
                # but carries nothing): let it rejoin.
                self.on_link_down()
            await sock.close(1001)
            return False
        if silent >= interval * 1000:
            try:
                await sock.ping()
            except (OSError, ws.WSClosed):
                return False
        return True

    # ---- sending ----------------------------------------------------------------------------

    def wake(self):
        self._wake.wake()

    async def _outbox(self):
        try:
            await self._boot()
            while True:
                c = self._next_status()
                if c is not None:
                    await self._send_status(c)
                elif self.txq.ready():
                    # The head of the queue sent as txqueue.py says, inline: no coroutine object
                    # per message.
                    q = self.txq
                    p = q.begin()
                    if p is not None and p is not True:
                        try:
                            q.answered(await self.call(q.action, p))
                        except (Offline, Timeout):
                            q.lost()
                            raise
                        except CallError as e:
                            q.refused(e.code)
                elif self._heartbeat_due() <= 0:
                    await self.heartbeat()
                else:
                    # Asleep until something is due or someone has work for us (wake()).
                    await self._wake.wait(self._idle_ms())
                    self._wake.done()
        except (Offline, Timeout):
            pass  # the link went down; run() reconnects and starts a new outbox
        except CallError as e:
            self.log("engine: %s" % e.code)
        finally:
            self._wake.done()  # cancelled while asleep, when the link drops

    def _heartbeat_due(self):
        interval = self.config.get("HeartbeatInterval")
        if interval <= 0:
            return 3600000
        # §4.6: a Heartbeat may be skipped while other messages keep the link busy.
        return interval * 1000 - ticks_diff(ticks_ms(), self.rpc.sent_ms)

    def heartbeat(self):
        """Send a Heartbeat; await it for the answer. Its currentTime sets the clock."""
        return self.call("Heartbeat", _EMPTY, None, _set_clock)

    async def _boot(self):
        # §4.2: nothing but BootNotification until Accepted. After a reconnect in the same run
        # the charger is still registered and does not boot again (OCPP-J §5.4).
        while self.registration != "Accepted":
            i = self.info
            p = {"chargePointVendor": i["vendor"], "chargePointModel": i["model"]}
            for k, f in (
                ("serial", "chargePointSerialNumber"),
                ("box_serial", "chargeBoxSerialNumber"),
                ("fw_version", "firmwareVersion"),
                ("iccid", "iccid"),
                ("imsi", "imsi"),
                ("meter_serial", "meterSerialNumber"),
                ("meter_type", "meterType"),
            ):
                if i.get(k):
                    p[f] = i[k]
            try:
                r = await self.call("BootNotification", p)
            except CallError as e:
                if isinstance(e, (Offline, Timeout)):
                    raise
                self.log("engine: BootNotification refused: %s" % e.code)
                await sleep_ms(_DEFAULT_RETRY_S * 1000)
                continue
            self.registration = r.get("status")
            if clock.set_from(r.get("currentTime", "")):
                metering.wake(self)  # the clock-aligned task sleeps while the clock is unknown
            interval = r.get("interval", 0)
            self.log("engine: boot %s, interval %s" % (self.registration, interval))
            if self.registration == "Accepted":
                if isinstance(interval, int) and interval > 0:
                    if interval != self.config.get("HeartbeatInterval"):
                        self.config.set("HeartbeatInterval", interval)
                for c in self.connectors:  # report every connector once registered (§4.9)
                    c.reported = None
                return
            await sleep_ms((interval if interval > 0 else _DEFAULT_RETRY_S) * 1000)

    def status_changed(self, c):
        # Called by Connector.update(). Reporting is level-triggered: the outbox sends the
        # current status of every connector whose status differs from the last one reported,
        # once it has been stable for MinimumStatusDuration (§9.1.20) and at least _SETTLE_MS,
        # so a status that lasts a few milliseconds (the EV not yet drawing in the instant the
        # relay closes) is not reported, and after an outage only the latest status goes out.
        c.changed_ms = ticks_ms()
        c.changed_ts = clock.now_iso() if clock.synced else None
        self.wake()

    # The outbox's bookkeeping, in plain methods with few locals each: on MicroPython a
    # function with more than about ten locals and stack slots gets its frame allocated and
    # freed at every call.

    def _next_status(self):
        """The connector due for a StatusNotification, or None; self._status_wait is then the
        ms until the next one is due."""
        self._status_wait = 3600000
        for c in self.connectors:
            left = self._status_left(c)
            if left is not None:
                if left <= 0:
                    return c
                self._status_wait = min(self._status_wait, left)
        return None

    def _status_left(self, c):
        # ms until connector c's status is to be reported; None when it was.
        r = c.reported  # compared field by field: no tuple per connector per round
        if r is None:
            return 0
        if r[0] == c.status and r[1] == c.error_code:
            return None
        r = max(self.config.get("MinimumStatusDuration") * 1000, _SETTLE_MS)
        return r - ticks_diff(ticks_ms(), c.changed_ms)

    def _idle_ms(self):
        # How long the outbox may sleep: until the next Heartbeat, retry or status.
        return max(min(self._heartbeat_due(), self.txq.retry_in(), self._status_wait), 10)

    async def _send_status(self, c):
        sent = (c.status, c.error_code)
        p = {"connectorId": c.id, "errorCode": c.error_code, "status": c.status}
        if c.info:
            p["info"] = c.info
        if c.changed_ts:
            p["timestamp"] = c.changed_ts
        await self.call("StatusNotification", p)
        c.reported = sent

    def _config_changed(self, key):
        self.wake()  # HeartbeatInterval and friends are read on every round of the outbox
        if key == "WebSocketPingInterval":
            self._ping_wake.wake()
        if key == "AuthorizationKey" and self.ws is not None:
            # Security whitepaper A01 (figure 4): reconnect with the new password. Later than
            # now, so the ChangeConfiguration answer goes out on the old connection first.
            asyncio.create_task(self._reconnect_soon())
        metering.wake(self)  # a sampling interval or a measurand list may have changed
        metering.align(self)

    async def _reconnect_soon(self):
        await sleep_ms(500)
        if self.ws is not None:
            await self.ws.close(1000)

    # ---- availability (§5.2), kept across reboots (§5.14: "Connector set to Unavailable shall
    # persist") -----------------------------------------------------------------------------

    def _restore_availability(self):
        down = store.load(_AVAILABILITY, self.log)
        if isinstance(down, list):
            for cid in down:
                if isinstance(cid, int) and 0 <= cid < len(self.connectors):
                    self.connectors[cid].operative = False

    def set_operative(self, c, operative):
        c.operative = operative
        c.pending_inoperative = False
        try:
            store.save(_AVAILABILITY, [x.id for x in self.connectors if not x.operative])
        except OSError as e:
            self.log("engine: availability not saved: %r" % e)
        for x in self.connectors if c.id == 0 else (c,):
            x.update()

    # ---- metering (the sampling itself is metering.py's) -----------------------------------

    def meter(self, cid, measurand):
        # Called per measurand per sample. A bare except on purpose: on MicroPython `except
        # Exception` (one more stack slot) gets this frame allocated per call. A failing
        # callback is the integrator's bug and must not stop metering; it is logged.
        try:
            return self.callback(GET_METER_VALUE, cid, measurand)
        except:  # noqa: E722
            pass  # (the handler's code would count on the stack too)
        self.log("engine: meter callback failed reading " + measurand)
        return None


def _set_clock(answer):
    clock.set_from(answer.get("currentTime", ""))


GET_METER_VALUE = const(1)  # the callback's reason for a reading; api.py has the others
