# Builds the hardware layer from a board file (checked beforehand by hal.boardcheck): per
# connector a pilot, a CT meter, a contactor behind its interlock, an optional lock and status
# LED; per board an optional MFRC522 reader. Needed once: start-up drops this module when the
# charger exists (main.py), and keeps only hal.hardware's small run-time classes. With
# hal.hardware, the only module that imports `machine`: on the host board that is the fake one
# (firmware/simmachine), so the same code runs in tools/sim.
import machine

from .hardware import Port
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


def port(spec, board):
    """One connector's hardware, from its entry in board.CONNECTORS."""
    p = Port()
    atten = getattr(board, "ADC_ATTN_DB", None)
    pwm = machine.PWM(machine.Pin(spec["pilot_pwm"]))
    p.pilot = Pilot(
        pwm, _adc(spec["pilot_adc"], atten), spec["pilot_cal"], spec.get("pilot_invert", False)
    )
    cts = spec["ct"]
    p.meter = Meter(
        tuple([_adc(ct["adc"], atten) for ct in cts]),
        cts,
        spec["voltage"],
        spec.get("power_factor", 1.0),
        getattr(board, "ADC_VREF", 3.3),
        getattr(board, "MAINS_HZ", 50),
    )
    fb = spec.get("relay_feedback")
    p.contactor = Contactor(
        _out(spec["relay"]),
        spec.get("relay_active", 1),
        None if fb is None else _in(fb),
        spec.get("relay_feedback_active", 1),
    )
    lk = spec.get("lock")
    if lk:
        from .lock import Lock

        fb = lk.get("feedback")
        p.lock = Lock(
            _out(lk["motor_a"]),
            _out(lk["motor_b"]),
            None if fb is None else _in(fb),
            lk.get("feedback_active", 1),
            lk.get("pulse_ms", 300),
        )
    led = spec.get("led")
    if led is not None:
        from .led import Led

        p.led = Led(_out(led))
    limit = min(spec["max_current_a"], board.MAX_CURRENT_A)
    p.interlock = Interlock(p.contactor, p.pilot, limit, p.lock)
    return p


def reader(board, log):
    """The board's MFRC522 reader, or None."""
    r = getattr(board, "RFID", None)
    if not r:
        return None
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
    return Reader(chip, log)
