# Builds the hardware layer from a board file (checked beforehand by hal.boardcheck): per connector
# a pilot, a CT meter, a contactor behind its interlock, an optional lock and status LED; per board
# an optional MFRC522 reader and the watchdog. The only module that imports `machine`: on the host
# board that is the fake one (firmware/simmachine), so the same code runs in tools/sim.
import machine

from .meter import Meter
from .pilot import Pilot
from .relay import Contactor, Interlock

# The lock, LED and RFID drivers are imported only for a board that has them: their code costs
# heap (.mpy files are loaded into RAM), a few KB that a board without them keeps.


def load_drivers(board, n):
    """Import the optional drivers that the board and its first n connectors use, ahead of
    Hardware() (start-up counts what is loaded before the charger exists as code)."""
    for spec in board.CONNECTORS[:n]:
        if spec.get("lock"):
            from . import lock  # noqa: F401
        if spec.get("led") is not None:
            from . import led  # noqa: F401
    if getattr(board, "RFID", None):
        from . import rfid  # noqa: F401


def _out(p):
    return machine.Pin(p, machine.Pin.OUT)


def _in(p):
    return machine.Pin(p, machine.Pin.IN, machine.Pin.PULL_UP)


def _adc(p, atten_db):
    a = machine.ADC(machine.Pin(p))
    if atten_db is not None and hasattr(a, "atten"):
        a.atten(getattr(machine.ADC, "ATTN_%dDB" % atten_db))
    return a


class Port:
    """One connector's hardware."""

    def __init__(self, spec, board):
        atten = getattr(board, "ADC_ATTN_DB", None)
        pwm = machine.PWM(machine.Pin(spec["pilot_pwm"]))
        self.pilot = Pilot(
            pwm, _adc(spec["pilot_adc"], atten), spec["pilot_cal"], spec.get("pilot_invert", False)
        )
        cts = spec["ct"]
        self.meter = Meter(
            tuple([_adc(ct["adc"], atten) for ct in cts]),
            cts,
            spec["voltage"],
            spec.get("power_factor", 1.0),
            getattr(board, "ADC_VREF", 3.3),
            getattr(board, "MAINS_HZ", 50),
        )
        fb = spec.get("relay_feedback")
        self.contactor = Contactor(
            _out(spec["relay"]),
            spec.get("relay_active", 1),
            None if fb is None else _in(fb),
            spec.get("relay_feedback_active", 1),
        )
        lk = spec.get("lock")
        self.lock = None
        if lk:
            from .lock import Lock

            fb = lk.get("feedback")
            self.lock = Lock(
                _out(lk["motor_a"]),
                _out(lk["motor_b"]),
                None if fb is None else _in(fb),
                lk.get("feedback_active", 1),
                lk.get("pulse_ms", 300),
            )
        led = spec.get("led")
        self.led = None
        if led is not None:
            from .led import Led

            self.led = Led(_out(led))
        limit = min(spec["max_current_a"], board.MAX_CURRENT_A)
        self.interlock = Interlock(self.contactor, self.pilot, limit, self.lock)


class Hardware:
    def __init__(self, board, n, log):
        self._wdt_ms = getattr(board, "WATCHDOG_MS", 0)  # the board module is not kept
        self.ports = tuple([Port(board.CONNECTORS[i], board) for i in range(n)])
        self.rfid = None
        r = getattr(board, "RFID", None)
        if r:
            from .rfid import Mfrc522, Reader

            spi = machine.SPI(
                r["spi"],
                baudrate=r.get("baudrate", 1000000),
                sck=machine.Pin(r["sck"]),
                mosi=machine.Pin(r["mosi"]),
                miso=machine.Pin(r["miso"]),
            )
            rst = r.get("rst")
            chip = Mfrc522(spi, _out(r["cs"]), None if rst is None else _out(rst))
            self.rfid = Reader(chip, log)
        self.wdt = None

    def port(self, cid):
        return self.ports[cid - 1]

    def start(self):
        """Bring up what talks back (the reader) and arm the watchdog; from here on the
        hardware loop must call feed() more often than WATCHDOG_MS."""
        if self.rfid is not None:
            self.rfid.start()
        if self._wdt_ms:
            self.wdt = machine.WDT(timeout=self._wdt_ms)

    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def trip(self):
        """Every contactor open, latched: a reset, or an unhandled exception."""
        for p in self.ports:
            p.interlock.trip()

    def reboot(self):
        self.trip()
        machine.reset()

    def keep_alive(self):
        """The charger stopped (Ctrl-C at the REPL, mpremote taking over): a watchdog cannot be
        disarmed on ESP32 or RP2040, so feed it from a timer to keep the REPL usable. The
        contactors stay open (trip() ran before)."""
        return None if self.wdt is None else every(1000, self.wdt.feed)


def every(ms, fn):
    """A machine.Timer that calls fn() every ms milliseconds, for when only the REPL is left
    running (the charger stopped, or never started)."""
    try:
        t = machine.Timer(-1)  # a virtual timer (rp2)
    except (ValueError, TypeError):
        t = machine.Timer(0)  # esp32: hardware timers only
    t.init(period=ms, mode=machine.Timer.PERIODIC, callback=lambda _: fn())
    return t
