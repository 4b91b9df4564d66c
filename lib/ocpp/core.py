# Handlers of the Core profile's CALLs from the central system (1.6 spec §5): one method of Core
# per action, named as the action, so `grep -n RemoteStartTransaction` finds it. A handler
# answers at once; anything that takes time is scheduled as a task after the answer.
import asyncio

from .rpc import ARR, ENUM, INT, OBJ, REQ, STR, CallError

# Every action a central system may send in OCPP 1.6, with the payload description (see
# rpc.check) of those the Core profile handles. One without a description is answered
# NotSupported (recognised, not supported) unless an optional profile handles it; any other name
# is NotImplemented (OCPP-J §4.2.3). Keyword arguments make the names identifiers: interned once
# as qstrs, shared with the method names below and with the incoming messages (see config.py).
KNOWN = dict(
    CancelReservation=None,
    ChangeAvailability=(
        ("connectorId", INT | REQ, None),
        ("type", ENUM | REQ, ("Inoperative", "Operative")),
    ),
    ChangeConfiguration=(("key", STR | REQ, 50), ("value", STR | REQ, 500)),
    ClearCache=(),
    ClearChargingProfile=None,
    DataTransfer=(("vendorId", STR | REQ, 255), ("messageId", STR, 50), ("data", STR, None)),
    GetCompositeSchedule=None,
    GetConfiguration=(("key", ARR, None),),
    GetDiagnostics=None,
    GetLocalListVersion=None,
    RemoteStartTransaction=(
        ("connectorId", INT, None),
        ("idTag", STR | REQ, 20),
        ("chargingProfile", OBJ, None),
    ),
    RemoteStopTransaction=(("transactionId", INT | REQ, None),),
    ReserveNow=None,
    Reset=(("type", ENUM | REQ, ("Hard", "Soft")),),
    SendLocalList=None,
    SetChargingProfile=None,
    TriggerMessage=None,
    UnlockConnector=(("connectorId", INT | REQ, None),),
    UpdateFirmware=None,
)


class Core:
    """The handler table of one charge point, for rpc.py: get(action) -> (payload description,
    function(payload) -> the CALLRESULT payload) or None. Looked up per CALL rather than held
    in a dict of closures: a charger spends no RAM on a table of the actions it rarely gets."""

    def __init__(self, cp):
        self.cp = cp
        self.more = {}  # the optional profiles' handlers, in rpc.py's format

    def update(self, handlers):
        self.more.update(handlers)

    def get(self, action):
        spec = KNOWN.get(action)
        if spec is None:
            return self.more.get(action)
        # Only a name of KNOWN gets here: getattr never interns a name from the network.
        return spec, getattr(self, action)

    def RemoteStartTransaction(self, p):
        # §5.11. The connector must exist and be free; without connectorId we pick one.
        from . import api  # here, not at the top: api.py imports chargepoint.py, which imports us

        cp = self.cp
        cid = p.get("connectorId")
        if cid is None:
            for c in cp.connectors[1:]:
                if c.available_for_start() and c.session is None:
                    cid = c.id
                    break
        if cid is None or not 0 < cid < len(cp.connectors):
            return {"status": "Rejected"}
        c = cp.connectors[cid]
        if not c.available_for_start() or c.session is not None:
            return {"status": "Rejected"}
        if p.get("chargingProfile") is not None:
            # Smart Charging is not built in yet: the start proceeds without the profile.
            cp.log("core: RemoteStartTransaction chargingProfile ignored (no SmartCharging)")
        sess = api.Session(cp, cid)  # reserve the connector now so a second start is refused
        asyncio.create_task(api.remote_start(cp, sess, p["idTag"]))
        return {"status": "Accepted"}

    def RemoteStopTransaction(self, p):
        # §5.12: stop the transaction with that id, as if stopped locally, reason Remote.
        from . import api  # here, not at the top: api.py imports chargepoint.py, which imports us

        for c in self.cp.connectors[1:]:
            if c.tx is not None and c.tx.id == p["transactionId"]:
                asyncio.create_task(api.stop_by_charger(self.cp, c, "Remote"))
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def ChangeConfiguration(self, p):
        # §5.3. AuthorizationKey is write-only and never logged (security whitepaper).
        key = p["key"]
        status = self.cp.config.change(key, p["value"])
        shown = "***" if key == "AuthorizationKey" else p["value"]
        self.cp.log("core: ChangeConfiguration %s=%s -> %s" % (key, shown, status))
        return {"status": status}

    def GetConfiguration(self, p):
        # §5.8. At most GetConfigurationMaxKeys keys are answered; a key we do not know, and
        # AuthorizationKey (write-only), are listed as unknown.
        keys = p.get("key")
        if keys is not None:
            for k in keys:
                if not isinstance(k, str) or len(k) > 50:
                    raise CallError("TypeConstraintViolation", "key must be strings")
            keys = keys[: self.cp.config.get("GetConfigurationMaxKeys")]
        found, unknown = self.cp.config.entries(keys or None, True)
        r = {"configurationKey": found}
        if unknown:
            r["unknownKey"] = unknown
        return r

    def UnlockConnector(self, p):
        # §5.18. The board's lock, through the integrator's callback; a lock-less charger
        # answers NotSupported.
        from . import api  # here, not at the top: api.py imports chargepoint.py, which imports us

        cp = self.cp
        cid = p["connectorId"]
        if not 0 < cid < len(cp.connectors):
            return {"status": "NotSupported"}
        c = cp.connectors[cid]
        if c.tx is not None:
            # Energy off before the lock opens; the StopTransaction follows (TC_018_1).
            cp.tell(api.STOP_CHARGING, cid, "UnlockCommand")
        r = cp.tell(api.UNLOCK_CONNECTOR, cid, None)
        if r is None:
            return {"status": "NotSupported"}  # a fixed cable (TC_017_2, TC_018_2)
        if c.tx is not None:
            asyncio.create_task(api.stop_by_charger(cp, c, "UnlockCommand"))
        return {"status": "Unlocked" if r else "UnlockFailed"}

    def DataTransfer(self, p):
        # §5.6: vendor-specific handlers registered through the API; others are unknown.
        fn = self.cp.vendors.get(p["vendorId"])
        if fn is None:
            return {"status": "UnknownVendorId"}
        return fn(p.get("messageId"), p.get("data"))

    def ChangeAvailability(self, p):
        # §5.2: connector 0 means the whole charger. During a transaction the change waits
        # until the transaction ends (Scheduled).
        cp = self.cp
        cid = p["connectorId"]
        if not 0 <= cid < len(cp.connectors):
            return {"status": "Rejected"}
        c = cp.connectors[cid]
        operative = p["type"] == "Operative"
        busy = [x for x in cp.connectors[1:] if x.tx is not None]
        if not operative and (busy if cid == 0 else c.tx is not None):
            c.pending_inoperative = True  # applied when the transaction(s) end
            return {"status": "Scheduled"}
        cp.set_operative(c, operative)
        return {"status": "Accepted"}

    def Reset(self, p):
        # §5.14: stop every transaction (SoftReset / HardReset), let the StopTransactions out,
        # then ask the integrator to restart.
        from . import api  # here, not at the top: api.py imports chargepoint.py, which imports us

        asyncio.create_task(api.reset(self.cp, p["type"]))
        return {"status": "Accepted"}

    def ClearCache(self, p):
        # §5.4: Rejected when there is no cache to clear.
        if not self.cp.config.get("AuthorizationCacheEnabled"):
            return {"status": "Rejected"}
        self.cp.auth_cache.clear()
        return {"status": "Accepted"}


HANDLERS = Core  # the name chargepoint.py builds the table with
