# The configuration keys of the 1.6 spec §9: each with its type, access and default, held in one
# table. Values that were changed are kept in a dict and persisted; the rest come from the table,
# so an unchanged charger spends no RAM on them.
#
# The table is a dict of small ints built with keyword arguments. Loaded from .mpy, a tuple of
# rows costs ~100 bytes per row and every string constant longer than 10 characters ~70 bytes;
# here the key names are identifiers, interned once as qstrs, and each description is an int
# stored in the dict's slot. Interning pays twice: the same names in the other modules' code,
# in the central system's messages and in GetConfiguration's answer are then that one qstr
# instead of a string object each (MicroPython looks a new string up among the qstrs first).
from . import store
from .compat import const

INT = const(0)
BOOL = const(1)
STR = const(2)
CSL = const(3)  # comma-separated measurands, checked against what the meter can give
_KIND = const(3)

RO = const(4)  # read-only for the central system
WO = const(8)  # write-only: never reported by GetConfiguration, never logged (AuthorizationKey)
REBOOT = const(16)  # takes effect after a reboot: ChangeConfiguration answers RebootRequired
_ACCESS = const(28)

_FILE = "config.json"

# The defaults as GetConfiguration reports them (short strings: interned, so answering with them
# allocates nothing), each stored once; row() adds a profile's.
ENERGY = "Energy.Active.Import.Register"  # imported by the others: one str object, not one each
TEXTS = ["", "Core", "Unknown", ENERGY, "false", "true"]


def row(kind, default, maximum=0, access=0):
    """One key's description packed in a small int: kind and access in bits 0-4, maximum (the
    largest int, a string's length or a list's item count; 0 for none) in bits 5-24, and the
    index of its default's text in TEXTS in the bits above."""
    if default not in TEXTS:
        TEXTS.append(default)
    return TEXTS.index(default) << 25 | maximum << 5 | access | kind


# Required Core keys of §9.1 plus the optional ones we support: kind, default (as text),
# maximum, access.
KEYS = dict(
    AllowOfflineTxForUnknownId=row(BOOL, "false"),
    AuthorizationCacheEnabled=row(BOOL, "true"),
    AuthorizationKey=row(STR, "", 40, WO),
    AuthorizeRemoteTxRequests=row(BOOL, "false"),
    ClockAlignedDataInterval=row(INT, "0", 86400),
    ConnectionTimeOut=row(INT, "60", 3600),
    ConnectorPhaseRotation=row(STR, "Unknown", 100),
    GetConfigurationMaxKeys=row(INT, "50", 0, RO),
    HeartbeatInterval=row(INT, "300", 86400),
    LocalAuthorizeOffline=row(BOOL, "true"),
    LocalPreAuthorize=row(BOOL, "false"),
    MeterValuesAlignedData=row(CSL, ENERGY, 8),
    MeterValuesAlignedDataMaxLength=row(INT, "8", 0, RO),
    MeterValuesSampledData=row(CSL, ENERGY, 8),
    MeterValuesSampledDataMaxLength=row(INT, "8", 0, RO),
    MeterValueSampleInterval=row(INT, "60", 86400),
    MinimumStatusDuration=row(INT, "0", 3600),
    NumberOfConnectors=row(INT, "1", 0, RO),
    ResetRetries=row(INT, "1", 10),
    StopTransactionOnEVSideDisconnect=row(BOOL, "true"),
    StopTransactionOnInvalidId=row(BOOL, "true"),
    StopTxnAlignedData=row(CSL, "", 8),
    StopTxnAlignedDataMaxLength=row(INT, "8", 0, RO),
    StopTxnSampledData=row(CSL, "", 8),
    StopTxnSampledDataMaxLength=row(INT, "8", 0, RO),
    SupportedFeatureProfiles=row(STR, "Core", 0, RO),
    TransactionMessageAttempts=row(INT, "3", 100),
    TransactionMessageRetryInterval=row(INT, "60", 86400),
    UnlockConnectorOnEVSideDisconnect=row(BOOL, "true"),
    WebSocketPingInterval=row(INT, "60", 86400),
)

# Measurands of the 1.6 spec §7.31; a CSL item may carry a phase suffix such as Current.Import.L1.
# Lists of names are comma-separated strings, read with listed().
MEASURANDS = (
    "Energy.Active.Import.Register,Energy.Active.Export.Register,"
    "Energy.Reactive.Import.Register,Energy.Reactive.Export.Register,"
    "Energy.Active.Import.Interval,Energy.Active.Export.Interval,"
    "Energy.Reactive.Import.Interval,Energy.Reactive.Export.Interval,"
    "Power.Active.Import,Power.Active.Export,Power.Offered,Power.Reactive.Import,"
    "Power.Reactive.Export,Power.Factor,Current.Import,Current.Export,Current.Offered,"
    "Voltage,Frequency,Temperature,SoC,RPM"
)
_PHASES = "L1,L2,L3,N,L1-N,L2-N,L3-N,L1-L2,L2-L3,L3-L1"


def listed(word, names):
    """Whether word is one of names: a tuple, or a comma-separated string (which costs a
    fraction of a tuple of strings once loaded)."""
    if not isinstance(names, str):
        return word in names
    if not isinstance(word, str) or not word or "," in word:
        return False
    n = len(word)
    i = names.find(word)
    while i >= 0:
        if (i == 0 or names.startswith(",", i - 1)) and (
            i + n == len(names) or names.startswith(",", i + n)
        ):
            return True
        i = names.find(word, i + 1)
    return False


def _default(r):
    kind, d = r & _KIND, TEXTS[r >> 25]
    return int(d) if kind == INT else d == "true" if kind == BOOL else d


class Config:
    """get(key) -> typed value; change(key, text) -> ChangeConfiguration status."""

    def __init__(self, log, measurands=None, fixed=None):
        self.log = log
        # What the meter can deliver: a CSL may only name these (§9.1.17 and §5.3: a value the
        # charger cannot honour is Rejected). A tuple or a comma-separated string.
        self.measurands = measurands or MEASURANDS
        self.fixed = fixed or {}  # values set by the integrator, e.g. NumberOfConnectors
        self.changed = {}
        self.extra = []  # key tables of the optional profiles in use (see add())
        self.on_change = None  # engine hook: called with the key after a change took effect
        self._restore()

    def add(self, keys):
        """Register the keys of an optional profile (a dict like KEYS), so a charger that does
        not use the profile does not report its keys."""
        self.extra.append(keys)
        self._restore()  # the file again: its profile keys were left out before

    def _row(self, key):
        r = KEYS.get(key)
        if r is None:
            for t in self.extra:
                r = t.get(key)
                if r is not None:
                    break
        return r

    def _restore(self):
        saved = store.load(_FILE, self.log)
        if isinstance(saved, dict):
            for k, v in saved.items():
                r = self._row(k)
                if r is None or k in self.changed:
                    continue  # unknown, or of a profile registered later
                # A stored value is re-validated: a hand-edited or damaged file must not smuggle
                # in a value the central system could never have set.
                if not r & RO and self._parse(k, r, _text(v)) == v:
                    self.changed[k] = v
                else:
                    self.log("config: ignoring stored %s" % k)

    def get(self, key):
        v = self.changed.get(key)
        if v is None:
            v = self.fixed.get(key)
            if v is None:
                r = self._row(key)
                if r is not None:
                    return _default(r)
        return v

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
        if r & RO:
            return "Rejected"
        v = self._parse(key, r, text)
        if v is None:
            return "Rejected"
        self.changed[key] = v
        self.save()
        if r & REBOOT:
            return "RebootRequired"
        if self.on_change:
            self.on_change(key)
        return "Accepted"

    def _parse(self, key, r, text):
        if not isinstance(text, str):
            return None
        kind, limit = r & _KIND, r >> 5 & 0xFFFFF
        if kind == INT:
            try:
                v = int(text)
            except ValueError:
                return None
            return v if 0 <= v and (not limit or v <= limit) else None
        if kind == BOOL:
            text = text.lower()
            return True if text == "true" else False if text == "false" else None
        if kind == CSL:
            if text == "":
                return ""
            items = text.split(",")
            if len(items) > limit:
                return None
            for n, item in enumerate(items):
                items[n] = item = item.strip()
                if not self._measurand_ok(item):
                    return None
            return ",".join(items)
        if limit and len(text) > limit:
            return None
        if key == "AuthorizationKey" and len(text) < 16:
            return None  # security whitepaper A00.FR.205: at least 16 bytes
        return text

    def _measurand_ok(self, item):
        if listed(item, self.measurands):
            return True
        dot = item.rfind(".")
        while dot > 0:  # try each split point: phases such as "L1-N" contain no dot
            if listed(item[:dot], self.measurands) and listed(item[dot + 1 :], _PHASES):
                return True
            dot = item.rfind(".", 0, dot)
        return False

    def entries(self, keys=None, dicts=False):
        """The keys for GetConfiguration, skipping write-only ones: (key, readonly, text value)
        each, or with dicts the configurationKey objects (§7.22) themselves; with `keys`, also
        the list of unknown ones. All keys come in the tables' own order, unsorted."""
        out = []
        unknown = []
        if keys is None:
            for t in [KEYS] + self.extra:
                for k in t:
                    self._entry(out, k, t[k], dicts)
        else:
            for k in keys:
                r = self._row(k)
                if r is None or not self._entry(out, k, r, dicts):
                    unknown.append(k)  # asked for by name: say we do not report it
        return out, unknown

    def _entry(self, out, k, r, dicts):
        if r & WO:
            return False
        v = self.changed.get(k)
        if v is None:
            v = self.fixed.get(k)
        # An unchanged value is reported as its default's text, which allocates nothing.
        v = TEXTS[r >> 25] if v is None else _text(v)
        ro = bool(r & RO)
        out.append({"key": k, "readonly": ro, "value": v} if dicts else (k, ro, v))
        return True


def _text(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    return v if isinstance(v, str) else str(v)
