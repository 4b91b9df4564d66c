# A fake `machine` module for the host board: Pin, ADC, PWM, SPI, WDT and Timer with the
# signatures of the ESP32 and RP2040 ports, backed by the simulated world of simworld.py; only what
# the firmware uses (its code is heap in the simulator's figures). tools/sim
# puts this folder first on MICROPYPATH (and only for the host board), so `import machine` in the
# hardware layer gets it, and the same pilot, metering, relay, lock and RFID code runs as on a
# board.
# Runs on the MicroPython unix port and on CPython (the host tests). Host only: never deployed.
from simworld import world


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return world().read(self.id)
        world().write(self.id, 1 if v else 0)
        return None


def _pin_id(p):
    return p.id if isinstance(p, Pin) else p


class ADC:
    def __init__(self, pin, atten=None):
        self.id = _pin_id(pin)

    def read_u16(self):
        return world().adc(self.id)


class PWM:
    def __init__(self, pin, freq=0, duty_u16=None):
        self.id = _pin_id(pin)
        self._freq = freq or 1000
        self._duty = 0
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f
        return None

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        self._duty = d
        world().set_pwm(self.id, d)
        return None


class SPI:
    def __init__(self, id, baudrate=1000000, polarity=0, phase=0, sck=None, mosi=None,
                 miso=None):
        self.id = id

    def write(self, buf):
        world().spi(buf, None)

    def write_readinto(self, wbuf, rbuf):
        world().spi(wbuf, rbuf)  # the chip reads each byte of wbuf before writing rbuf's


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        world().feeds += 1


class Timer:
    # No interrupts on the host: a timer is accepted and never fires.
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        self.id = id

    def init(self, period=-1, mode=1, callback=None, freq=-1):
        self.callback = callback

    def deinit(self):
        self.callback = None


RESTART = 77  # the exit code that makes tools/sim start the firmware again, as a board boots


def reset():
    # A reset of the simulated board ends the process; tools/sim starts it again.
    raise SystemExit(RESTART)
