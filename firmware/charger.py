# The charger's behaviour, written only against the library's public API (ocpp.api): a card
# starts or stops a session, the plug starts an authorised one, the relay follows the
# transaction, and the hardware's state is reported as connector events.
import asyncio

from ocpp import api
from ocpp.compat import sleep_ms

_ENERGY = "Energy.Active.Import.Register"
_REFUSED = ("Blocked", "Expired", "Invalid", "ConcurrentTx", "NotAuthorized", "Rejected")


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
        }
        cs = {
            "url": settings["csms_url"],
            "cp_id": settings["cp_id"],
            "auth_key": settings["auth_key"],
            "ca_file": settings["ca_file"],
        }
        self.cp = api.init(info, cs, self.callback, log)
        self.sessions = [None] * (n + 1)
        self._drawing = [False] * (n + 1)

    def start(self):
        self.cp.start()
        asyncio.create_task(self._hardware_loop())

    # ---- the library's callback -------------------------------------------------------------

    def callback(self, reason, cid, value):
        if reason == api.GET_METER_VALUE:
            return self.hw.connector(cid).read(value)
        if reason == api.START_CHARGING:
            self.sessions[cid] = value
            asyncio.create_task(self._start_when_plugged(value))
            return True
        if reason == api.STOP_CHARGING:
            self.hw.set_relay(cid, False)
            return True
        if reason == api.UNLOCK_CONNECTOR:
            return self.hw.unlock(cid)
        return None

    # ---- inputs -------------------------------------------------------------------------------

    def plug(self, cid, plugged):
        c = self.hw.connector(cid)
        if c.plugged == plugged:
            return
        c.plugged = plugged
        if not plugged:
            self.hw.set_relay(cid, False)
        self.cp.connector_event(cid, api.EV_PLUGGED if plugged else api.EV_UNPLUGGED)

    def fault(self, cid, code):
        self.hw.connector(cid).fault = code
        if code:
            self.hw.set_relay(cid, False)
            self.cp.connector_event(cid, api.FAULT, code)
        else:
            self.cp.connector_event(cid, api.FAULT_CLEARED)
            sess = self.sessions[cid]
            if sess is not None and sess.tx is not None and not sess.tx.ended:
                self.hw.set_relay(cid, True)

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
            self.hw.set_relay(cid, False)
            await sess.stop_transaction(self._energy(cid), reason="Local", id_tag=tag)
            sess.close()
            self.sessions[cid] = None
            return
        if sess is not None and not sess.closed:
            if sess.id_tag == tag:  # the same card again before plugging in: cancel
                sess.close()
                self.sessions[cid] = None
            return
        try:
            sess = self.cp.session_open(cid)
        except ValueError:
            self.log("charger: connector %d is busy" % cid)
            return
        self.sessions[cid] = sess
        status = await sess.authorize(tag)
        self.log("charger: card %s on %d: %s" % (tag, cid, status))
        if status != api.ACCEPTED:
            sess.close()
            self.sessions[cid] = None
            return
        await self._start_when_plugged(sess)

    async def _start_when_plugged(self, sess):
        cid = sess.connector
        if not await sess.wait_plugged():
            self.sessions[cid] = None
            return
        status = await sess.start_transaction(self._energy(cid), cid)
        self.log("charger: transaction on %d: %s" % (cid, status))
        if status in _REFUSED:
            return  # the library ends it (StopTransactionOnInvalidId) or it never began
        if sess.tx is not None and not sess.tx.ended and not self.hw.connector(cid).fault:
            self.hw.set_relay(cid, True)

    def _energy(self, cid):
        return self.hw.connector(cid).energy_wh()

    async def _hardware_loop(self):
        # 10 Hz: integrate the meters and turn the EV's state into connector events.
        while True:
            for cid in range(1, len(self.sessions)):
                c = self.hw.connector(cid)
                c.tick()
                d = c.drawing()
                if d != self._drawing[cid]:
                    self._drawing[cid] = d
                    self.cp.connector_event(cid, api.EV_CHARGING if d else api.EV_SUSPENDED)
            await sleep_ms(100)
