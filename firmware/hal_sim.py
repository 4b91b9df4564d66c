# Simulated hardware for the host board: an EV per connector that follows IEC 61851 roughly, a
# contactor relay and an energy meter. It offers the same small interface a real board's hardware
# layer does (plugged / drawing / current / energy_wh / relay), so charger.py does not know which
# one it drives.
from ocpp.compat import ticks_diff, ticks_ms


class SimConnector:
    def __init__(self, spec):
        self.voltage = spec.get("voltage", 230)
        self.phases = spec.get("phases", 1)
        self.max_a = spec.get("max_current_a", 16)
        self.plugged = False  # IEC 61851 state B or C when True, A when False
        self.ev_max_a = 16  # the most the EV draws when offered (0 = the EV pauses)
        self.relay = False
        self.offered_a = 0  # the charger's PWM offer
        self.fault = None
        self.energy_mwh = 0  # milli-Wh, an int, so that integration never drifts
        self._last = ticks_ms()

    def current(self):
        if not (self.plugged and self.relay) or self.fault:
            return 0
        return min(self.ev_max_a, self.offered_a)

    def drawing(self):
        return self.current() > 0

    def power_w(self):
        return self.voltage * self.current() * self.phases

    def tick(self):
        # Integrate over the real elapsed ticks, so a late loop does not lose energy.
        now = ticks_ms()
        dt = ticks_diff(now, self._last)
        self._last = now
        if dt > 0:
            self.energy_mwh += self.power_w() * dt // 3600

    def energy_wh(self):
        return self.energy_mwh // 1000

    def read(self, measurand):
        if measurand == "Energy.Active.Import.Register":
            return self.energy_wh()
        if measurand == "Power.Active.Import":
            return self.power_w()
        if measurand == "Current.Import":
            return self.current()
        if measurand == "Current.Offered":
            return self.offered_a if self.relay else 0
        if measurand == "Voltage":
            return self.voltage
        return None


class SimHardware:
    def __init__(self, board, n):
        self.connectors = [SimConnector(board.CONNECTORS[i]) for i in range(n)]

    def connector(self, cid):
        return self.connectors[cid - 1]

    def set_relay(self, cid, on):
        c = self.connector(cid)
        c.relay = on
        c.offered_a = c.max_a if on else 0

    def unlock(self, cid):
        return True
