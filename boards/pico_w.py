# Raspberry Pi Pico W (RP2040 + CYW43439): one single-phase Type 2 socket with a lock, 16 A.
# Data only; docs/hardware.md has the wiring picture. GP23-25 and GP29 belong to the Wi-Fi chip;
# only GP26-28 are analogue inputs. "LED" is the on-board LED behind the Wi-Fi chip.
NAME = "pico_w"
MAX_CURRENT_A = 16  # the installation's limit
MAINS_HZ = 50
ADC_VREF = 3.3
WATCHDOG_MS = 8000  # the RP2040 allows at most 8388 ms
WIFI_PM_OFF = True  # the CYW43's power saving adds hundreds of ms to every packet
OUTPUT_PINS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
               26, 27, 28, "LED")
INPUT_PINS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
              26, 27, 28)
ADC_PINS = (26, 27, 28)
RFID = {"spi": 0, "sck": 18, "mosi": 19, "miso": 16, "cs": 17, "rst": 20}
CONNECTORS = (
    {
        "relay": 15,
        "relay_feedback": 14,
        "relay_feedback_active": 0,
        "pilot_pwm": 13,
        "pilot_adc": 28,
        "pilot_cal": (4766, 58385),
        "ct": ({"adc": 26, "ratio": 2000, "burden": 33.0},),
        "voltage": 230,
        "phases": 1,
        "max_current_a": 16,
        "lock": {"motor_a": 10, "motor_b": 11, "feedback": 12, "feedback_active": 0,
                 "pulse_ms": 300},
        "led": "LED",
    },
)
MEASURANDS = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "Voltage",
)
