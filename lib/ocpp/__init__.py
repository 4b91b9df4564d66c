# The portable OCPP 1.6J charge-point library. Import what you use (ocpp.api for integrators);
# nothing is imported here, so a board pays only for the modules it loads.
