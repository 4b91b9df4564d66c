# The charger's hardware layer: pilot, metering, contactor interlock, lock, LED, RFID, Wi-Fi, all
# built from a board file (boards/) by hal.hardware. Only hal.hardware and hal.wifi touch
# `machine` and `network`; the rest takes pin objects, so the host tests run it on CPython.
#
# What runs on every tick of the hardware loop (20 a second) allocates nothing, so that the
# collector seldom runs and never in the middle of a burst of ADC readings. Beside the usual
# (preallocated array buffers, no tuples or floats per call) that takes small functions: the
# MicroPython VM gives a call its frame on the C stack only when the frame's locals and value
# stack fit in 11 words (VM_MAX_STATE_ON_STACK in py/objfun.c); a larger one comes from the heap
# on every call. tests_host/mp_hal_check.py measures it on the unix port.
