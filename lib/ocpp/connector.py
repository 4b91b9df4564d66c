# One connector: its inputs from the hardware (plug, EV drawing, fault), its transaction, and the
# ChargePointStatus (1.6 spec §7.7) derived from them. The status is computed from the inputs
# rather than stored as transitions, so no sequence of events can leave it stale; every change is
# handed to the engine, which sends the StatusNotification (§4.9).
import gc

from .compat import MICROPYTHON, const
from .config import listed

AVAILABLE = "Available"
PREPARING = "Preparing"
CHARGING = "Charging"
SUSPENDED_EV = "SuspendedEV"
SUSPENDED_EVSE = "SuspendedEVSE"
FINISHING = "Finishing"
RESERVED = "Reserved"
UNAVAILABLE = "Unavailable"
FAULTED = "Faulted"

# Hardware events, as the integrator reports them with OCPP.connector_event().
EV_PLUGGED = const(1)
EV_UNPLUGGED = const(2)
EV_CHARGING = const(3)  # the EV draws current (IEC 61851 state C/D)
EV_SUSPENDED = const(4)  # the EV is plugged but draws nothing (state B)
EVSE_SUSPENDED = const(5)  # the charger offers no current (e.g. a limit of 0 A)
EVSE_RESUMED = const(6)
FAULT = const(7)  # info: the ChargePointErrorCode, e.g. "GroundFailure"
FAULT_CLEARED = const(8)


# ChargePointErrorCode (§7.6), less NoError: one string, read with config.listed().
ERROR_CODES = (
    "ConnectorLockFailure,EVCommunicationError,GroundFailure,HighTemperature,InternalError,"
    "LocalListConflict,OtherError,OverCurrentFailure,OverVoltage,PowerMeterFailure,"
    "PowerSwitchFailure,ReaderFailure,ResetFailure,UnderVoltage,WeakSignal"
)


# Attributes at their usual value are class attributes, shared: an instance's own attribute
# table then holds only what differs, which keeps it small (MicroPython sizes it by count).


class Transaction:
    """A transaction from the charger's point of view. `id` is the central system's
    transactionId, None until StartTransaction is answered (it may start offline, §3.7)."""

    parent_id_tag = None
    id = None
    stop_reason = None
    ended = False
    start_done = False  # StartTransaction answered or given up
    stop_data = None  # meterValue elements for StopTransaction's transactionData

    def __init__(self, connector, id_tag, meter_start, start_time):
        self.connector = connector
        self.id_tag = id_tag
        self.meter_start = meter_start
        self.start_time = start_time
        self.meter_last = meter_start


class Connector:
    plugged = False
    drawing = False
    evse_suspended = False
    fault = None  # ChargePointErrorCode while faulted
    operative = True
    pending_inoperative = False  # ChangeAvailability Scheduled (§5.2)
    tx = None
    session = None  # the API session that owns this connector
    authorized_tag = None  # authorised, waiting for the plug (state Preparing)
    auth_deadline = 0  # ticks_ms when ConnectionTimeOut expires
    finishing = False  # transaction ended while the cable is still plugged
    status = None
    error_code = "NoError"
    info = None  # free text for StatusNotification.info (at most 50 characters)
    reported = None  # (status, errorCode) last sent in a StatusNotification
    changed_ms = 0
    changed_ts = None

    def __init__(self, cp, cid):
        self.cp = cp
        self.id = cid

    def compute(self):
        if self.fault:
            return FAULTED
        if self.id and not self.cp.connectors[0].operative and self.tx is None:
            return UNAVAILABLE  # connector 0 stands for the whole charger (§5.2)
        if self.tx is not None:
            if self.tx.id is None and not self.tx.start_done:
                # An incipient transaction: still Preparing until StartTransaction is answered
                # (or given up), so Charging is never reported before the start.
                return PREPARING
            if self.evse_suspended:
                return SUSPENDED_EVSE
            if not self.plugged or not self.drawing:
                return SUSPENDED_EV
            return CHARGING
        if not self.operative:
            return UNAVAILABLE
        if self.finishing and self.plugged:
            return FINISHING
        if self.plugged or self.authorized_tag is not None:
            return PREPARING
        return AVAILABLE

    def update(self):
        s = self.compute()
        code = self.fault or "NoError"
        if s != self.status or code != self.error_code:
            self.status = s
            self.error_code = code
            self.cp.status_changed(self)

    def event(self, ev, info=None):
        """Apply one hardware event, then report the new status if it changed."""
        if ev <= EV_UNPLUGGED and MICROPYTHON:
            # A transaction is about to begin or has ended: what lives as long as it does (the
            # Transaction, its metering task, its queued messages) is made about now. Collected
            # first, the heap places them in the holes at its bottom; between collections they
            # would land wherever allocation had got to, splitting the largest free block (a
            # plug is rare, a collection a few ms).
            gc.collect()
        if ev == EV_PLUGGED:
            self.plugged = True
            self.info = None
        elif ev == EV_UNPLUGGED:
            self.plugged = False
            self.drawing = False
            self.finishing = False
            # TC_005_3: a transaction that outlives the unplug says why it is suspended.
            self.info = "EV side disconnected" if self.tx is not None else None
        elif ev == EV_CHARGING:
            self.drawing = True
        elif ev == EV_SUSPENDED:
            self.drawing = False
        elif ev == EVSE_SUSPENDED:
            self.evse_suspended = True
        elif ev == EVSE_RESUMED:
            self.evse_suspended = False
        elif ev == FAULT:
            self.fault = info if listed(info, ERROR_CODES) else "OtherError"
        elif ev == FAULT_CLEARED:
            self.fault = None
        self.update()

    def available_for_start(self):
        return self.operative and not self.fault and self.tx is None
