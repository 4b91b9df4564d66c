# The charger's hardware layer: pilot, metering, contactor interlock, lock, LED, RFID, Wi-Fi, all
# built from a board file (boards/) by hal.hardware. Only hal.hardware and hal.wifi touch
# `machine` and `network`; the rest takes pin objects, so the host tests run it on CPython.
