# The simulated board used by tools/sim and the host tests: data only, like every board file.
NAME = "host"
MAX_CURRENT_A = 32  # the installation's limit
CONNECTORS = (
    # One dict per connector. The simulator has no pins; it models the EV, the relay and the
    # meter in software (firmware/hal_sim.py) with these electrical values.
    {"voltage": 230, "phases": 1, "max_current_a": 16, "lock": True},
    {"voltage": 230, "phases": 1, "max_current_a": 16, "lock": True},
    {"voltage": 230, "phases": 1, "max_current_a": 16, "lock": True},
    {"voltage": 230, "phases": 1, "max_current_a": 16, "lock": True},
)
MEASURANDS = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "Voltage",
)
