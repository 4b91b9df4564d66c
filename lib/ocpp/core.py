# Handlers of the Core profile's CALLs from the central system (1.6 spec §5), one function per
# action, all registered in HANDLERS below by their OCPP name: `grep '"ActionName"'` finds each.
# A handler answers at once; anything that takes time is scheduled as a task after the answer.
import asyncio

from .rpc import ARR, ENUM, INT, OBJ, REQ, STR, CallError

# Every action a central system may send in OCPP 1.6. One we have no handler for is answered
# NotSupported (recognised, not supported); any other name is NotImplemented (OCPP-J §4.2.3).
KNOWN = (
    "CancelReservation",
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "ClearChargingProfile",
    "DataTransfer",
    "GetCompositeSchedule",
    "GetConfiguration",
    "GetDiagnostics",
    "GetLocalListVersion",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "ReserveNow",
    "Reset",
    "SendLocalList",
    "SetChargingProfile",
    "TriggerMessage",
    "UnlockConnector",
    "UpdateFirmware",
)

_REMOTE_START = (
    ("connectorId", INT, None),
    ("idTag", STR | REQ, 20),
    ("chargingProfile", OBJ, None),
)
_REMOTE_STOP = (("transactionId", INT | REQ, None),)
_CHANGE_CONFIG = (("key", STR | REQ, 50), ("value", STR | REQ, 500))
_GET_CONFIG = (("key", ARR, None),)
_UNLOCK = (("connectorId", INT | REQ, None),)
_DATA_TRANSFER = (("vendorId", STR | REQ, 255), ("messageId", STR, 50), ("data", STR, None))
_RESET = (("type", ENUM | REQ, ("Hard", "Soft")),)
_AVAILABILITY = (
    ("connectorId", INT | REQ, None),
    ("type", ENUM | REQ, ("Inoperative", "Operative")),
)


def HANDLERS(cp):
    """The handler table of one charge point: action -> (payload description, function)."""
    from . import api

    def remote_start(p):
        # §5.11. The connector must exist and be free; without connectorId we pick one.
        cid = p.get("connectorId")
        if cid is None:
            for c in cp.connectors[1:]:
                if c.available_for_start() and c.session is None:
                    cid = c.id
                    break
            else:
                return {"status": "Rejected"}
        if not 0 < cid < len(cp.connectors):
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

    def remote_stop(p):
        # §5.12: stop the transaction with that id, as if stopped locally, reason Remote.
        for c in cp.connectors[1:]:
            if c.tx is not None and c.tx.id == p["transactionId"]:
                asyncio.create_task(api.stop_by_charger(cp, c, "Remote"))
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def change_configuration(p):
        # §5.3. AuthorizationKey is write-only and never logged (security whitepaper).
        status = cp.config.change(p["key"], p["value"])
        shown = "***" if p["key"] == "AuthorizationKey" else p["value"]
        cp.log("core: ChangeConfiguration %s=%s -> %s" % (p["key"], shown, status))
        return {"status": status}

    def get_configuration(p):
        keys = p.get("key")
        if keys is not None:
            for k in keys:
                if not isinstance(k, str) or len(k) > 50:
                    raise CallError("TypeConstraintViolation", "key must be strings")
            keys = keys[: cp.config.get("GetConfigurationMaxKeys")]
        found, unknown = cp.config.entries(keys or None, True)
        r = {"configurationKey": found}
        if unknown:
            r["unknownKey"] = unknown
        return r

    def unlock_connector(p):
        # §5.18. The board's lock, through the integrator's callback; a lock-less charger
        # answers NotSupported.
        cid = p["connectorId"]
        if not 0 < cid < len(cp.connectors):
            return {"status": "NotSupported"}
        c = cp.connectors[cid]
        if c.tx is not None:
            # Energy off before the lock opens; the StopTransaction follows (TC_018_1).
            try:
                cp.callback(api.STOP_CHARGING, cid, "UnlockCommand")
            except Exception as e:
                cp.log("core: stop callback failed: %r" % e)
        r = cp._unlock(cid)
        if r is None:
            return {"status": "NotSupported"}  # a fixed cable (TC_017_2, TC_018_2)
        if c.tx is not None:
            asyncio.create_task(api.stop_by_charger(cp, c, "UnlockCommand"))
        return {"status": "Unlocked" if r else "UnlockFailed"}

    def data_transfer(p):
        # §5.6: vendor-specific handlers registered through the API; others are unknown.
        fn = cp.vendors.get(p["vendorId"]) if hasattr(cp, "vendors") else None
        if fn is None:
            return {"status": "UnknownVendorId"}
        return fn(p.get("messageId"), p.get("data"))

    def change_availability(p):
        # §5.2: connector 0 means the whole charger. During a transaction the change waits
        # until the transaction ends (Scheduled).
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

    def reset(p):
        # §5.14: stop every transaction (SoftReset / HardReset), let the StopTransactions out,
        # then ask the integrator to restart.
        asyncio.create_task(api.reset(cp, p["type"]))
        return {"status": "Accepted"}

    def clear_cache(p):
        # §5.4: Rejected when there is no cache to clear.
        if not cp.config.get("AuthorizationCacheEnabled"):
            return {"status": "Rejected"}
        cp.auth_cache.clear()
        return {"status": "Accepted"}

    return {
        "ClearCache": ((), clear_cache),
        "RemoteStartTransaction": (_REMOTE_START, remote_start),
        "RemoteStopTransaction": (_REMOTE_STOP, remote_stop),
        "ChangeConfiguration": (_CHANGE_CONFIG, change_configuration),
        "GetConfiguration": (_GET_CONFIG, get_configuration),
        "UnlockConnector": (_UNLOCK, unlock_connector),
        "DataTransfer": (_DATA_TRANSFER, data_transfer),
        "ChangeAvailability": (_AVAILABILITY, change_availability),
        "Reset": (_RESET, reset),
    }
