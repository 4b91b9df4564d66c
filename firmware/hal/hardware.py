# The hardware layer at run time: per connector a Port (pilot, CT meter, contactor behind its
# interlock, optional lock and status LED), the board's optional reader and its watchdog.
# hal/build.py makes them from the board file and is dropped once the charger exists: only these
# small classes stay. With hal/build.py, the only module that imports `machine`.
import machine


class Port:
    """One connector's hardware (hal/build.py fills it in)."""

    lock = None
    led = None


class Hardware:
    def __init__(self, board, n, log):
        from . import build  # start-up drops it (main.py)

        self._wdt_ms = getattr(board, "WATCHDOG_MS", 0)  # the board module is not kept
        self.ports = tuple([build.port(board.CONNECTORS[i], board) for i in range(n)])
        self.rfid = build.reader(board, log)
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
        wdt = self.wdt
        if wdt is None:
            return None
        try:
            t = machine.Timer(-1)
        except (ValueError, TypeError):
            t = machine.Timer(0)
        t.init(period=1000, mode=machine.Timer.PERIODIC, callback=lambda _: wdt.feed())
        return t
