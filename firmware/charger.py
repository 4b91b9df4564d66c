# The charger's behaviour, written only against the library's public API (ocpp.api) and the
# hardware layer (hal): a card starts or stops a session, the plug starts an authorised one, the
# interlock lets energy flow for an authorised transaction only, and the EV's state read on the
# control pilot is reported to the library as connector events.
#
# Whether energy may flow is recomputed from the current facts on every tick of the hardware loop
# (_apply), not kept as transitions, and handed to the one interlock per connector (hal/relay.py).
import asyncio

from hal.meter import ENERGY
from hal.pilot import PLUGGED
from hal.timing import quiet_waits
from ocpp import api
from ocpp.compat import const, sleep_ms, ticks_ms
from ocpp.register import Register

_TICK_MS = const(50)  # pilot polls: an unplugged EV opens the contactor within ~150 ms
_METER_TICKS = const(20)  # one CT measurement per connector a second
_RFID_TICKS = const(5)  # (divides _METER_TICKS)
PROFILES = ("localauth",)  # the library's optional profiles the charger offers (ocpp/profiles/)
_REFUSED = ("Blocked", "Expired", "Invalid", "ConcurrentTx", "NotAuthorized", "Rejected")
PILOT_FAULT = "EVCommunicationError"
LOCK_FAILURE = "ConnectorLockFailure"
INTERNAL_FAULT = "InternalError"

# Fault sources of a connector, in order of precedence for the reported errorCode.
_EXTERNAL = const(0)  # a fault input (the simulator's `fault` command)
_SWITCH = const(1)  # the contactor's auxiliary contact disagrees: welded or not pulling in
_PILOT = const(2)  # pilot state E or F, or the EV's diode missing
_LOCK = const(3)
_INTERNAL = const(4)  # an unhandled exception somewhere
_SOURCES = const(5)


class Charger:
    def __init__(self, hw, settings, board, log):
        self.hw = hw
        self.log = log
        n = settings["connectors"]
        info = {
            "vendor": settings["vendor"],
            "model": settings["model"],
            "serial": settings["serial"],
            "fw_version": "0.1.0",
            "connectors": n,
            "measurands": board.MEASURANDS,
            "profiles": PROFILES,
        }
        cs = {
            "url": settings["csms_url"],
            "cp_id": settings["cp_id"],
            "auth_key": settings["auth_key"],
            "ca_file": settings["ca_file"],
        }
        self.cp = api.init(info, cs, self.callback, log)
        self.n = n
        # CT clamps forget their count at power-off: the register on flash carries it over, so
        # Energy.Active.Import.Register never goes backwards (issue 4, errata 3.9).
        self.register = Register(n, log)
        for cid in range(1, n + 1):
            hw.port(cid).meter.start_from(self.register.get(cid))
        self.sessions = [None] * (n + 1)
        self.energise = [False] * (n + 1)  # the transaction's start went through: energy wanted
        self._plugged = [False] * (n + 1)
        self._drawing = [False] * (n + 1)
        self._faults = [None] + [[None] * _SOURCES for _ in range(n)]
        self._fault = [None] * (n + 1)  # the code reported
        self._hold = [False] * (n + 1)  # the cable is to be held locked (a start, a transaction)
        self._lock_failed = [None] * (n + 1)  # the lock position that failed: not retried
        self._led = [None] * (n + 1)
        self.engine = None
        self.ticks = 0

    def start(self, wifi=None):
        quiet_waits()
        self.hw.start()
        asyncio.get_event_loop().set_exception_handler(self._crash)
        asyncio.create_task(self._hardware_loop())
        asyncio.create_task(self._start_engine(wifi))

    async def _start_engine(self, wifi):
        # Hand the engine a working network: wait for the first join (not forever: offline
        # charging with local authorisation works without one).
        if wifi is not None:
            self.cp.on_link_down = wifi.link_failed
            asyncio.create_task(wifi.run(lambda: self.cp.connected))
            await wifi.wait_up(30000)
        self.engine = self.cp.start()

    # ---- the library's callback -------------------------------------------------------------

    # The library asks for each measurand of each connector every MeterValueSampleInterval: that
    # path has frames small enough for the C stack (hal/__init__.py); callback()'s whole body
    # in one frame took 136 bytes of heap per reading.
    def callback(self, reason, cid, value):
        if reason == api.GET_METER_VALUE:
            return self._reading(cid, value)
        return self._event(reason, cid, value)

    def _reading(self, cid, value):
        p = self.hw.port(cid)
        if value == "Current.Offered":
            return p.pilot.offered
        if value == ENERGY:  # on flash before the library journals it
            return self.energy_wh(cid, True)
        return p.meter.read(value)

    def _event(self, reason, cid, value):
        if reason == api.START_CHARGING:
            self.sessions[cid] = value
            asyncio.create_task(self._start_when_plugged(value))
            return True
        if reason == api.STOP_CHARGING:
            if value == "UnlockCommand" and self.hw.port(cid).lock is None:
                return True  # a fixed cable: nothing to unlock, the transaction goes on
            self._cut(cid)
            return True
        if reason == api.RESET:  # the library stopped every transaction already
            self.hw.trip()
            asyncio.create_task(self._reboot(200))
            return True
        if reason == api.UNLOCK_CONNECTOR:
            lock = self.hw.port(cid).lock
            if lock is None:
                return None
            self._cut(cid)  # the contactor opens before the lock moves
            return lock.set(False)
        return None

    # ---- inputs -------------------------------------------------------------------------------

    def fault(self, cid, code):
        """An external fault (code) on a connector, or its end (None)."""
        self._set_fault(cid, _EXTERNAL, code)

    def energy_wh(self, cid, persist=False):
        wh = self.hw.port(cid).meter.read(ENERGY)
        return self.register.report(cid, wh) if persist else self.register.update(cid, wh)

    async def card(self, cid, tag):
        """A card at a connector: stop its transaction if the card may, else start a session."""
        sess = self.sessions[cid]
        if sess is not None and sess.tx is not None and not sess.tx.ended:
            tx = sess.tx
            may = tag == tx.id_tag
            if not may and tx.parent_id_tag:
                # 1.6 spec §3.5.1: a card of the same group (parentIdTag) may stop it.
                probe = self.cp.session_open()
                await probe.authorize(tag)
                may = probe.parent_id_tag == tx.parent_id_tag
                probe.close()
            if not may:
                self.log("charger: card %s may not stop this transaction" % tag)
                return
            await self.stop(cid, "Local", tag)
            return
        if sess is not None and sess.tx is not None:
            # Stopped, its StopTransaction on its way (stop() awaits the answer): a new card is a
            # new session, not one to ignore until the central system answers.
            sess.close()
            self.sessions[cid] = sess = None
        if sess is not None and not sess.closed:
            if sess.id_tag == tag:  # the same card again before plugging in: cancel
                sess.close()
                self.sessions[cid] = None
            return
        sess = self._open(cid)
        if sess is None:
            return
        status = await sess.authorize(tag)
        self.log("charger: card %s on %d: %s" % (tag, cid, status))
        if status != api.ACCEPTED:
            sess.close()
            self.sessions[cid] = None
            return
        await self._start_when_plugged(sess)

    async def card_at_reader(self, tag):
        """A card at the board's one reader: the connector it concerns is the one whose
        transaction or session it owns, else a plugged free one, else the first free one."""
        free = plugged = None
        for cid in range(1, self.n + 1):
            s = self.sessions[cid]
            if s is not None and not s.closed and s.id_tag == tag:
                return await self.card(cid, tag)
            c = self.cp.connectors[cid]
            if c.session is None and c.available_for_start():
                free = free or cid
                if c.plugged:
                    plugged = plugged or cid
        cid = plugged or free
        if cid is None:
            self.log("charger: card %s: no free connector" % tag)
            return None
        return await self.card(cid, tag)

    async def start_by_hand(self, cid, tag):
        """A session for `tag` without asking the central system (the debug REPL)."""
        sess = self._open(cid)
        if sess is None:
            return
        sess.accept(tag)
        await self._start_when_plugged(sess)

    def _open(self, cid):
        """A new session on connector cid, or None (logged) when the connector is taken."""
        try:
            sess = self.cp.session_open(cid)
        except ValueError:
            self.log("charger: connector %d is busy" % cid)
            return None
        self.sessions[cid] = sess
        return sess

    async def stop(self, cid, reason="Local", tag=None):
        """Stop the connector's transaction: energy off first, then StopTransaction."""
        sess = self.sessions[cid]
        if sess is None or sess.tx is None or sess.tx.ended:
            return "NoTransaction"
        self._cut(cid)
        r = await sess.stop_transaction(self.energy_wh(cid, True), reason=reason, id_tag=tag)
        sess.close()
        if self.sessions[cid] is sess:  # (not a card's new session meanwhile)
            self.sessions[cid] = None
        return r

    async def _start_when_plugged(self, sess):
        cid = sess.connector
        if not await sess.wait_plugged():
            self.sessions[cid] = None
            return
        # The cable is locked before the transaction starts: a lock that fails means no
        # transaction at all (OCTT TC_024), and the connector Faulted until it is unplugged.
        lock = self.hw.port(cid).lock
        self._hold[cid] = True
        if lock is not None and not lock.locked and not lock.set(True):
            self._hold[cid] = False
            self._lock_failed[cid] = True
            self._set_fault(cid, _LOCK, LOCK_FAILURE)
            sess.close()
            self.sessions[cid] = None
            return
        status = await sess.start_transaction(self.energy_wh(cid, True), cid)
        self.log("charger: transaction on %d: %s" % (cid, status))
        if status in _REFUSED:
            self._hold[cid] = False
            return  # the library ends it (StopTransactionOnInvalidId) or it never began
        if sess.tx is not None and not sess.tx.ended:
            self.energise[cid] = True
            self._apply(cid)

    # ---- faults -------------------------------------------------------------------------------

    def _set_fault(self, cid, source, code):
        f = self._faults[cid]
        if f[source] != code:  # the hardware loop asks each tick: the usual answer is no change
            f[source] = code
            self._fault_changed(cid)

    def _fault_changed(self, cid):
        top = None
        for c in self._faults[cid]:
            if c:
                top = c
                break
        if top != self._fault[cid]:
            self._fault[cid] = top
            if top:
                self.log("charger: connector %d fault %s" % (cid, top))
                self.cp.connector_event(cid, api.FAULT, top)
            else:
                self.cp.connector_event(cid, api.FAULT_CLEARED)
        self._apply(cid)

    def _crash(self, loop, context):
        # Any unhandled exception in a task: every contactor opens and stays open. If it was the
        # OCPP engine itself that died, nothing can recover but a reset.
        exc = context.get("exception")
        self.log("charger: unhandled %r (%s); contactors opened" % (exc, context.get("message")))
        self.hw.trip()
        for cid in range(1, self.n + 1):
            self._set_fault(cid, _INTERNAL, INTERNAL_FAULT)
        if self.engine is not None and context.get("future") is self.engine:
            asyncio.create_task(self._reboot(2000))

    async def _reboot(self, ms):
        await sleep_ms(ms)  # the log lines get out
        self.hw.reboot()

    # ---- the hardware loop --------------------------------------------------------------------

    def _running(self, cid):
        """The transaction the charger started on cid is on: energy is wanted."""
        tx = self.cp.connectors[cid].tx
        return self.energise[cid] and tx is not None and not tx.ended

    def _cut(self, cid):
        """The transaction on cid is to end: energy off, and the cable no longer held."""
        self.energise[cid] = False
        self._hold[cid] = False
        self._apply(cid)

    def _apply(self, cid):
        """Hand the interlock the facts; report whether the EV now draws energy."""
        il = self.hw.port(cid).interlock
        il.authorised = self._running(cid)
        il.fault = self._fault[cid]
        drawing = il.update()
        if drawing != self._drawing[cid]:
            self._switched(cid, drawing)

    def _switched(self, cid, drawing):
        # Measure at once: the energy register holds the last power until the next measurement,
        # and energy must stop counting when the contactor opens, not up to a second later.
        # If the measurement is disturbed, an open contactor still means no power (a welded one
        # is a fault of its own, PowerSwitchFailure, and the next measurement sees its current).
        self._drawing[cid] = drawing
        m = self.hw.port(cid).meter
        if not m.update(not drawing) and not drawing:
            m.register.set_power(0, ticks_ms())
        self.cp.connector_event(cid, api.EV_CHARGING if drawing else api.EV_SUSPENDED)

    def _pilot_changed(self, cid, state):
        self._set_fault(cid, _PILOT, PILOT_FAULT if state in ("E", "F") else None)
        if state in ("E", "F"):
            return  # plugged or not is unknown: keep what was known
        plugged = state in PLUGGED
        if plugged != self._plugged[cid]:
            self._plugged[cid] = plugged
            if not plugged:  # a lock failure lasts until the cable is out
                self._hold[cid] = False
                self._lock_failed[cid] = None
                self._set_fault(cid, _LOCK, None)
            self.cp.connector_event(cid, api.EV_PLUGGED if plugged else api.EV_UNPLUGGED)

    def _lock(self, cid, p):
        # The lock holds the cable from the start of a session's transaction to its end, and
        # lets go when the cable is pulled out anyway. A failed move is not retried.
        lock = p.lock
        if lock is None or self._lock_failed[cid] is not None:
            return
        # (running: plugged in again during the transaction)
        want = self._plugged[cid] and (self._hold[cid] or self._running(cid))
        if lock.locked != want and not lock.set(want):
            self._lock_failed[cid] = want
            self._set_fault(cid, _LOCK, LOCK_FAILURE)

    # The hardware loop allocates nothing in the usual tick (no state change): it runs 20 times
    # a second. Hence the small methods: a MicroPython function with more than 11 words of
    # locals and stack gets its frame from the heap at every call (hal/__init__.py).

    def tick(self, now):
        """One round of the hardware loop over every connector."""
        # Counted modulo the meter's period (a multiple of the reader's): an ever-growing count
        # would leave the small ints after 2**30 ticks (20 months) and allocate every tick.
        self.ticks = (self.ticks + 1) % _METER_TICKS
        for cid in range(1, self.n + 1):
            self._tick_port(cid, now)
        if self.hw.rfid is not None and self.ticks % _RFID_TICKS == 0:
            self._read_card(now)
        self.hw.feed()

    def _tick_port(self, cid, now):
        p = self.hw.port(cid)
        if p.pilot.poll():
            self._pilot_changed(cid, p.pilot.state)
        self._set_fault(cid, _SWITCH, p.contactor.failure())
        self._lock(cid, p)
        self._apply(cid)
        if self.ticks % _METER_TICKS == cid - 1:
            p.meter.update(not p.contactor.closed)
            self.register.update(cid, p.meter.read(ENERGY))
        if p.led is not None:
            self._led_tick(cid, p.led, now)

    def _led_tick(self, cid, led, now):
        status = self.cp.connectors[cid].status
        if status != self._led[cid]:
            self._led[cid] = status
            led.show_status(status)
        led.tick(now)

    def _read_card(self, now):
        tag = self.hw.rfid.poll(now)
        if tag:
            self.log("charger: card %s at the reader" % tag)
            asyncio.create_task(self.card_at_reader(tag))

    async def _hardware_loop(self):
        while True:
            try:
                self.tick(ticks_ms())
            except Exception:
                self.hw.trip()  # no monitoring any more: open everything, then let it be known
                raise
            await sleep_ms(_TICK_MS)
