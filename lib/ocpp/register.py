# The energy register of each connector (Wh), kept on flash for a meter that forgets its count
# when the power goes (the simulator, a pulse counter on a GPIO): Energy.Active.Import.Register is
# a register (errata 3.9), so meter values must never go backwards, not even after a reboot.
#
#   reg = Register(connectors, log)
#   meter.start_from(reg.get(cid))      # at boot: go on counting from the last saved value
#   reg.update(cid, meter_wh)           # the meter's own ticks: saved now and then
#   return reg.report(cid, meter_wh)    # GET_METER_VALUE for Energy.Active.Import.Register
#
# Wear: update() saves (a small file, written to a temporary name and renamed, store.py) when
# step_wh Wh have accumulated or, if anything was counted, period_s seconds have passed: at most
# 10 small writes per kWh with the defaults. report() saves a reading before the OCPP library
# gets it, when it moved: the library journals what it reads (meter values, the meterStop it
# would use after a power cut), so the register must never restart below any of it. That is one
# small write per reading the library takes: per MeterValueSampleInterval while charging.
from . import store
from .compat import ticks_diff, ticks_ms

_FILE = "energy.json"


class Register:
    def __init__(self, connectors, log=None, name=_FILE, step_wh=100, period_s=300):
        self.name = name
        self.log = log
        self.step = step_wh
        self.period_ms = period_s * 1000
        self.wh = [0] * (connectors + 1)  # index = connector id; 0 = the main meter
        self.saved = [0] * (connectors + 1)
        self.saves = 0  # since boot: the flash writes this register caused
        data = store.load(name, log)
        if isinstance(data, list):
            for i in range(min(len(data), connectors + 1)):
                v = data[i]
                if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                    self.wh[i] = self.saved[i] = v
        elif data is not None and log:
            log("register: %s holds no list; counting from 0" % name)
        self._t = ticks_ms()

    def get(self, cid):
        return self.wh[cid]

    def update(self, cid, wh):
        """A new reading of connector cid's meter -> the register value (never lower than the
        last one, before or after a reboot)."""
        wh = int(wh)
        if wh > self.wh[cid]:
            self.wh[cid] = wh
        d = self.wh[cid] - self.saved[cid]
        if d >= self.step or (d and ticks_diff(ticks_ms(), self._t) >= self.period_ms):
            self.flush()
        return self.wh[cid]

    def report(self, cid, wh):
        """A reading for the OCPP library: on flash before it is handed out (if it moved)."""
        v = self.update(cid, wh)
        if self.saved[cid] != v:
            self.flush()
        return v

    def flush(self):
        """Save now if anything changed (at transaction start and stop)."""
        if self.wh == self.saved:
            return
        try:
            store.save(self.name, self.wh)
        except OSError as e:
            if self.log:
                self.log("register: not saved: %r" % e)
            return
        self.saved[:] = self.wh
        self._t = ticks_ms()
        self.saves += 1
