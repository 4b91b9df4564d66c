# The configuration keys of the 1.6 spec §9: each with its type, access and default, held in one
# table. Values that were changed are kept in a dict and persisted; the rest come from the table,
# so an unchanged charger spends no RAM on them.
from . import store
from .compat import const

INT = const(1)
BOOL = const(2)
STR = const(3)
CSL = const(4)  # comma-separated measurands, checked against what the meter can give

RO = const(1)  # read-only for the central system
WO = const(2)  # write-only: never reported by GetConfiguration, never logged (AuthorizationKey)
REBOOT = const(4)  # a change takes effect after a reboot: ChangeConfiguration answers RebootRequired

_FILE = "config.json"

# (key, type, flags, default, maximum). Maximum: the largest int, or a CSL's maximum item count.
# Required Core keys of §9.1 plus the optional ones we support. Keys read by the engine at run
# time are looked up by name, which MicroPython interns, so the lookups do not allocate.
KEYS = (
    ("AllowOfflineTxForUnknownId", BOOL, 0, False, None),
    ("AuthorizationCacheEnabled", BOOL, 0, True, None),
    ("AuthorizationKey", STR, WO, "", 40),
    ("AuthorizeRemoteTxRequests", BOOL, 0, False, None),
    ("ClockAlignedDataInterval", INT, 0, 0, 86400),
    ("ConnectionTimeOut", INT, 0, 60, 3600),
    ("ConnectorPhaseRotation", STR, 0, "Unknown", 100),
    ("GetConfigurationMaxKeys", INT, RO, 50, None),
    ("HeartbeatInterval", INT, 0, 300, 86400),
    ("LocalAuthorizeOffline", BOOL, 0, True, None),
    ("LocalPreAuthorize", BOOL, 0, False, None),
    ("MeterValuesAlignedData", CSL, 0, "Energy.Active.Import.Register", 8),
    ("MeterValuesAlignedDataMaxLength", INT, RO, 8, None),
    ("MeterValuesSampledData", CSL, 0, "Energy.Active.Import.Register", 8),
    ("MeterValuesSampledDataMaxLength", INT, RO, 8, None),
    ("MeterValueSampleInterval", INT, 0, 60, 86400),
    ("MinimumStatusDuration", INT, 0, 0, 3600),
    ("NumberOfConnectors", INT, RO, 1, None),
    ("ResetRetries", INT, 0, 1, 10),
    ("StopTransactionOnEVSideDisconnect", BOOL, 0, True, None),
    ("StopTransactionOnInvalidId", BOOL, 0, True, None),
    ("StopTxnAlignedData", CSL, 0, "", 8),
    ("StopTxnAlignedDataMaxLength", INT, RO, 8, None),
    ("StopTxnSampledData", CSL, 0, "", 8),
    ("StopTxnSampledDataMaxLength", INT, RO, 8, None),
    ("SupportedFeatureProfiles", STR, RO, "Core", None),
    ("TransactionMessageAttempts", INT, 0, 3, 100),
    ("TransactionMessageRetryInterval", INT, 0, 60, 86400),
    ("UnlockConnectorOnEVSideDisconnect", BOOL, 0, True, None),
    ("WebSocketPingInterval", INT, 0, 60, 86400),
)

# Measurands of the 1.6 spec §7.31; a CSL item may carry a phase suffix such as Current.Import.L1.
MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Active.Import.Interval",
    "Energy.Active.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Energy.Reactive.Export.Interval",
    "Power.Active.Import",
    "Power.Active.Export",
    "Power.Offered",
    "Power.Reactive.Import",
    "Power.Reactive.Export",
    "Power.Factor",
    "Current.Import",
    "Current.Export",
    "Current.Offered",
    "Voltage",
    "Frequency",
    "Temperature",
    "SoC",
    "RPM",
)
_PHASES = ("L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")


def _find(rows, key):
    for r in rows:
        if r[0] == key:
            return r
    return None


class Config:
    """get(key) -> typed value; change(key, text) -> ChangeConfiguration status."""

    def __init__(self, log, measurands=None, fixed=None):
        self.log = log
        # What the meter can deliver: a CSL may only name these (§9.1.17 and §5.3: a value the
        # charger cannot honour is Rejected).
        self.measurands = measurands or MEASURANDS
        self.fixed = fixed or {}  # values set by the integrator, e.g. NumberOfConnectors
        self.changed = {}
        self.extra = []  # rows of the optional profiles in use (see add())
        self.on_change = None  # engine hook: called with the key after a change took effect
        self._saved = store.load(_FILE, log)
        self._restore()

    def add(self, rows):
        """Register the keys of an optional profile (same row format as KEYS), so a charger
        that does not use the profile does not report its keys."""
        self.extra.extend(rows)
        self._restore()

    def _row(self, key):
        return _find(KEYS, key) or _find(self.extra, key)

    def _restore(self):
        saved = self._saved
        if isinstance(saved, dict):
            for k, v in saved.items():
                if k in self.changed:
                    continue
                r = self._row(k)
                if r is None and not self.extra:
                    continue  # may belong to a profile registered later
                # A stored value is re-validated: a hand-edited or damaged file must not smuggle
                # in a value the central system could never have set.
                if r and not r[2] & RO and self._parse(r, _text(v)) == v:
                    self.changed[k] = v
                elif r:
                    self.log("config: ignoring stored %s" % k)

    def get(self, key):
        v = self.changed.get(key)
        if v is not None:
            return v
        v = self.fixed.get(key)
        if v is not None:
            return v
        r = self._row(key)
        return r[3] if r else None

    def set(self, key, value, persist=True):
        """Set a typed value from inside the charger (not subject to the RO flag)."""
        self.changed[key] = value
        if persist:
            self.save()

    def save(self):
        try:
            store.save(_FILE, self.changed)
        except OSError as e:
            self.log("config: cannot save: %r" % e)

    def change(self, key, text):
        """ChangeConfiguration (§5.3): Accepted, Rejected, RebootRequired or NotSupported."""
        r = self._row(key)
        if r is None:
            return "NotSupported"
        if r[2] & RO:
            return "Rejected"
        v = self._parse(r, text)
        if v is None:
            return "Rejected"
        self.changed[key] = v
        self.save()
        if r[2] & REBOOT:
            return "RebootRequired"
        if self.on_change:
            self.on_change(key)
        return "Accepted"

    def _parse(self, r, text):
        if not isinstance(text, str):
            return None
        kind, limit = r[1], r[4]
        if kind == INT:
            try:
                v = int(text)
            except ValueError:
                return None
            if v < 0 or (limit is not None and v > limit):
                return None
            return v
        if kind == BOOL:
            t = text.lower()
            return True if t == "true" else False if t == "false" else None
        if kind == CSL:
            if text == "":
                return ""
            items = text.split(",")
            if len(items) > limit:
                return None
            for item in items:
                if not self._measurand_ok(item.strip()):
                    return None
            return ",".join(i.strip() for i in items)
        if limit is not None and len(text) > limit:
            return None
        if r[0] == "AuthorizationKey" and len(text) < 16:
            return None  # security whitepaper A00.FR.205: at least 16 bytes
        return text

    def _measurand_ok(self, item):
        if item in self.measurands:
            return True
        dot = item.rfind(".")
        while dot > 0:  # try each split point: phases such as "L1-N" contain no dot
            if item[:dot] in self.measurands and item[dot + 1 :] in _PHASES:
                return True
            dot = item.rfind(".", 0, dot)
        return False

    def entries(self, keys=None):
        """(key, readonly, text value) for GetConfiguration, skipping write-only keys; with
        `keys`, also the list of unknown ones."""
        out = []
        unknown = []
        for k in keys if keys is not None else [r[0] for r in KEYS + tuple(self.extra)]:
            r = self._row(k)
            if r is None or r[2] & WO:
                if keys is not None:  # asked for by name: say we do not report it
                    unknown.append(k)
                continue
            out.append((k, bool(r[2] & RO), _text(self.get(k))))
        return out, unknown


def _text(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)
