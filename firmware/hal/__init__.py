# The charger's hardware layer: pilot, metering, contactor interlock, lock, LED, RFID, Wi-Fi, all
# built from a board file (boards/) by hal.hardware. Only hal.hardware and hal.wifi touch
# `machine` and `network`; the rest takes pin objects, so the host tests run it on CPython.
#
# What runs on every tick of the hardware loop (20 a second) allocates nothing, so that it makes
# no garbage for the collector and never waits on the allocator in the middle of a burst of ADC
# readings: preallocated array buffers, integers rather than floats (each float is a heap
# object), no tuples returned, and small functions. The MicroPython VM gives a call its frame on
# the C stack only when the frame's locals and value stack fit in 11 words
# (VM_MAX_STATE_ON_STACK in py/objfun.c); a larger frame is allocated on the heap at every call
# and freed on return: no garbage, but an allocation (a search for a free block) each time.
# tests_host/mp_hal_check.py checks the garbage on the unix port.
