# The simulated board of tools/sim and the host tests: data only, like every board file. Its
# pins are numbers on the fake `machine` (firmware/simmachine/machine.py), which reads this file
# to know what is wired where: the simulated EV behind each pilot, the CT clamps, the contactor.
NAME = "host"
MAX_CURRENT_A = 32  # the installation's limit
MAINS_HZ = 50
ADC_VREF = 3.3  # volts at read_u16() == 65535
WATCHDOG_MS = 8000
CONSOLE = True  # the simulator's stdin console drives the simulated EVs (firmware/console.py)
# What the fake MCU can do with each pin: anything.
OUTPUT_PINS = range(100)
INPUT_PINS = range(100)
ADC_PINS = range(100)
RFID = {"spi": 1, "sck": 2, "mosi": 3, "miso": 4, "cs": 5, "rst": 6}
CONNECTORS = (
    # Connector n uses pins 10n .. 10n+8.
    {
        "relay": 10,
        "relay_feedback": 11,
        "pilot_pwm": 12,
        "pilot_adc": 13,
        "pilot_cal": (2979, 59577),  # read_u16() at -12 V and +12 V on the pilot
        "ct": ({"adc": 14, "ratio": 2000, "burden": 33.0},),
        "voltage": 230,
        "phases": 1,
        "max_current_a": 16,
        "lock": {"motor_a": 15, "motor_b": 16, "feedback": 17, "pulse_ms": 20},
        "led": 18,
    },
    {
        "relay": 20,
        "relay_feedback": 21,
        "pilot_pwm": 22,
        "pilot_adc": 23,
        "pilot_cal": (2979, 59577),
        "ct": ({"adc": 24, "ratio": 2000, "burden": 33.0},),
        "voltage": 230,
        "phases": 1,
        "max_current_a": 16,
        "lock": {"motor_a": 25, "motor_b": 26, "feedback": 27, "pulse_ms": 20},
        "led": 28,
    },
    {
        "relay": 30,
        "relay_feedback": 31,
        "pilot_pwm": 32,
        "pilot_adc": 33,
        "pilot_cal": (2979, 59577),
        "ct": ({"adc": 34, "ratio": 2000, "burden": 33.0},),
        "voltage": 230,
        "phases": 1,
        "max_current_a": 16,
        "lock": {"motor_a": 35, "motor_b": 36, "feedback": 37, "pulse_ms": 20},
        "led": 38,
    },
    {
        "relay": 40,
        "relay_feedback": 41,
        "pilot_pwm": 42,
        "pilot_adc": 43,
        "pilot_cal": (2979, 59577),
        "ct": ({"adc": 44, "ratio": 2000, "burden": 33.0},),
        "voltage": 230,
        "phases": 1,
        "max_current_a": 16,
        "lock": {"motor_a": 45, "motor_b": 46, "feedback": 47, "pulse_ms": 20},
        "led": 48,
    },
)
MEASURANDS = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "Voltage",
)
