# The board file is checked before any pin is touched: a pin used twice, a missing required field,
# an unknown field (a typo) or a value out of range stops start-up with one line per problem, each
# naming the field, e.g.
#   CONNECTORS[0].ct[1].adc: pin 34 is used twice (also CONNECTORS[0].pilot_adc)
from ocpp.compat import const

_OUT = const(1)  # an output pin
_IN = const(2)  # an input pin
_ADC = const(3)  # an analogue input pin
_NUM = const(4)  # a number within (lo, hi)
_LEVEL = const(5)  # 0 or 1: the pin level that means "active"
_STR = const(6)
_CAL = const(7)  # (read_u16 at -12 V, read_u16 at +12 V)
_CTS = const(8)  # a tuple of CT clamp dicts
_DICT = const(9)  # a dict with its own fields
_BOOL = const(10)
_SEQ = const(11)  # a tuple (of the MCU's pins, of measurands)

# (name, kind, required, range or sub-schema)
_CT = (
    ("adc", _ADC, True, None),
    ("ratio", _NUM, True, (1, 100000)),  # CT turns ratio, e.g. 2000 for 100 A : 50 mA
    ("burden", _NUM, True, (0.1, 100000)),  # ohms
    ("cal", _NUM, False, (0.5, 2.0)),  # gain trim found by comparing with a reference meter
)
_LOCK = (
    ("motor_a", _OUT, True, None),  # driven high to lock
    ("motor_b", _OUT, True, None),  # driven high to unlock
    ("feedback", _IN, False, None),
    ("feedback_active", _LEVEL, False, None),
    ("pulse_ms", _NUM, False, (20, 2000)),
)
_RFID = (
    ("spi", _NUM, True, (0, 3)),
    ("sck", _OUT, True, None),
    ("mosi", _OUT, True, None),
    ("miso", _IN, True, None),
    ("cs", _OUT, True, None),
    ("rst", _OUT, False, None),
    ("baudrate", _NUM, False, (100000, 10000000)),
)
_CONNECTOR = (
    ("relay", _OUT, True, None),
    ("relay_active", _LEVEL, False, None),
    ("relay_feedback", _IN, False, None),
    ("relay_feedback_active", _LEVEL, False, None),
    ("pilot_pwm", _OUT, True, None),
    ("pilot_invert", _BOOL, False, None),
    ("pilot_adc", _ADC, True, None),
    ("pilot_cal", _CAL, True, None),
    ("ct", _CTS, True, _CT),
    ("voltage", _NUM, True, (100, 480)),
    ("phases", _NUM, True, (1, 3)),
    ("power_factor", _NUM, False, (0.5, 1.0)),
    ("max_current_a", _NUM, True, (6, 80)),
    ("lock", _DICT, False, _LOCK),
    ("led", _OUT, False, None),
)
_BOARD = (
    ("NAME", _STR, True, None),
    ("MAX_CURRENT_A", _NUM, True, (6, 80)),
    ("MAINS_HZ", _NUM, False, (45, 65)),
    ("ADC_VREF", _NUM, False, (1.0, 5.0)),
    ("ADC_ATTN_DB", _NUM, False, (0, 12)),
    ("WATCHDOG_MS", _NUM, False, (0, 60000)),
    ("WIFI_PM_OFF", _BOOL, False, None),
    ("CONSOLE", _BOOL, False, None),
    ("OUTPUT_PINS", _SEQ, True, None),
    ("INPUT_PINS", _SEQ, True, None),
    ("ADC_PINS", _SEQ, True, None),
    ("RFID", _DICT, False, _RFID),
    ("MEASURANDS", _SEQ, True, None),
)


class BoardError(ValueError):
    pass


class _Check:
    def __init__(self, board):
        self.board = board
        self.errors = []
        self.used = {}  # pin -> the field that uses it

    def err(self, field, msg):
        self.errors.append("%s: %s" % (field, msg))

    def fields(self, where, data, schema):
        known = []
        for name, kind, required, rng in schema:
            known.append(name)
            v = data.get(name)
            if v is not None:
                self.value(_join(where, name), kind, v, rng)
            elif required:
                self.err(_join(where, name), "missing")
        for name in data:
            if name not in known:
                self.err(_join(where, name), "unknown field")

    def value(self, field, kind, v, rng):
        b = self.board
        if kind == _OUT:
            self.pin(field, v, getattr(b, "OUTPUT_PINS", ()), "an output")
        elif kind == _IN:
            self.pin(field, v, getattr(b, "INPUT_PINS", ()), "an input")
        elif kind == _ADC:
            self.pin(field, v, getattr(b, "ADC_PINS", ()), "an ADC")
        elif kind == _NUM:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                self.err(field, "must be a number, not %r" % (v,))
            elif not rng[0] <= v <= rng[1]:
                self.err(field, "%r is out of range %r..%r" % (v, rng[0], rng[1]))
        elif kind == _LEVEL:
            if v not in (0, 1) or isinstance(v, bool):
                self.err(field, "must be 0 or 1, not %r" % (v,))
        elif kind == _BOOL:
            if not isinstance(v, bool):
                self.err(field, "must be True or False, not %r" % (v,))
        elif kind == _STR:
            if not isinstance(v, str) or not v:
                self.err(field, "must be a non-empty string")
        elif kind == _SEQ:
            if not isinstance(v, (tuple, list, range)):
                self.err(field, "must be a tuple")
        elif kind == _CAL:
            self.cal(field, v)
        elif kind == _DICT:
            if not isinstance(v, dict):
                self.err(field, "must be a dict")
            else:
                self.fields(field, v, rng)
        elif kind == _CTS:
            if not isinstance(v, (tuple, list)) or not v:
                self.err(field, "must be a tuple of CT clamps, one per phase")
                return
            for i, ct in enumerate(v):
                if isinstance(ct, dict):
                    self.fields("%s[%d]" % (field, i), ct, rng)
                else:
                    self.err("%s[%d]" % (field, i), "must be a dict")

    def pin(self, field, v, allowed, what):
        if not isinstance(v, (int, str)) or isinstance(v, bool):
            self.err(field, "a pin must be a number or a name, not %r" % (v,))
            return
        if v not in allowed:
            self.err(field, "pin %r is not %s pin of board %s" % (v, what, self.board_name()))
        other = self.used.get(v)
        if other is not None:
            self.err(field, "pin %r is used twice (also %s)" % (v, other))
        else:
            self.used[v] = field

    def cal(self, field, v):
        try:
            lo, hi = v
        except (TypeError, ValueError):
            self.err(field, "must be (read_u16 at -12 V, read_u16 at +12 V)")
            return
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi <= 65535):
            self.err(field, "%r: need 0 <= at -12 V < at +12 V <= 65535" % (v,))
        elif hi - lo < 8192:
            self.err(field, "%r: the divider leaves too few ADC steps for 24 V" % (v,))

    def board_name(self):
        return getattr(self.board, "NAME", "?")

    def connectors(self):
        cons = getattr(self.board, "CONNECTORS", None)
        if not isinstance(cons, (tuple, list)) or not cons:
            self.err("CONNECTORS", "missing (a tuple of one dict per connector)")
            return
        for i, c in enumerate(cons):
            field = "CONNECTORS[%d]" % i
            if not isinstance(c, dict):
                self.err(field, "must be a dict")
                continue
            self.fields(field, c, _CONNECTOR)
            cts, phases = c.get("ct"), c.get("phases")
            if isinstance(cts, (tuple, list)) and isinstance(phases, int) and len(cts) != phases:
                self.err(field + ".ct", "%d CT clamps for %d phases" % (len(cts), phases))


def _join(where, name):
    return "%s.%s" % (where, name) if where else name


def check(board):
    """Raise BoardError listing every problem of the board module (or object) `board`."""
    c = _Check(board)
    # The board's upper-case names are its fields (CONNECTORS, a tuple, is checked apart).
    data = {}
    for name in dir(board):
        if name.isupper() and name != "CONNECTORS":
            data[name] = getattr(board, name)
    c.fields("", data, _BOARD)
    c.connectors()
    if c.errors:
        raise BoardError("board %s:\n  %s" % (c.board_name(), "\n  ".join(c.errors)))
