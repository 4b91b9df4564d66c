# Compact descriptions of OCPP payloads, and the check of an incoming CALL's payload against
# one, which maps what is wrong onto the CALLERROR codes of OCPP-J §4.2.3 (rpc.py answers
# with them). The handler tables (core.py, profiles/) describe their actions with these.
from .compat import const

# Field kinds of the compact payload descriptions (see check()). A description is a tuple of
# (name, kind, arg) triples; `kind | REQ` marks a required field.
INT = const(1)  # arg: None or (min, max)
STR = const(2)  # arg: maximum length (the CiStringNType of the 1.6 schemas) or None
ENUM = const(3)  # arg: tuple of allowed strings
OBJ = const(4)  # arg: nested description or None (any object)
NUM = const(5)  # int or float (decimal in the schemas)
BOOL = const(6)
ARR = const(7)  # arg: description of each element (an object) or None
TIME = const(8)  # dateTime string
REQ = const(16)
_KIND = const(15)


def check(payload, spec):
    """Check a payload against a compact description. Returns None when it conforms, else
    (errorCode, description) with the §4.2.3 code: a wrong JSON type is a
    TypeConstraintViolation, a missing required field an OccurenceConstraintViolation (the
    spec's spelling), a value outside its enumeration or range a PropertyConstraintViolation, and
    a field the action does not define a FormationViolation (the schemas forbid extra fields)."""
    if not isinstance(payload, dict):
        return "FormationViolation", "payload is not an object"
    for name, kind, arg in spec:
        v = payload.get(name)
        if v is None:
            if name in payload:  # JSON null is not a value of any OCPP field
                return "TypeConstraintViolation", name + " is null"
            if kind & REQ:
                return "OccurenceConstraintViolation", name + " is required"
            continue
        err = _check_value(name, v, kind & _KIND, arg)
        if err:
            return err
    if len(payload) > len(spec):
        # Only then can there be a field we do not know; this keeps the common path cheap.
        for name in payload:
            for f in spec:
                if f[0] == name:
                    break
            else:
                return "FormationViolation", name + " is not a field of this action"
    return None


def _check_value(name, v, kind, arg):
    if kind == INT:
        if not isinstance(v, int) or isinstance(v, bool):
            return "TypeConstraintViolation", name + " must be an integer"
        if arg and not arg[0] <= v <= arg[1]:
            return "PropertyConstraintViolation", name + " out of range"
    elif kind == STR or kind == TIME:
        if not isinstance(v, str):
            return "TypeConstraintViolation", name + " must be a string"
        if kind == STR and arg and len(v) > arg:
            return "TypeConstraintViolation", name + " too long"
    elif kind == ENUM:
        if not isinstance(v, str):
            return "TypeConstraintViolation", name + " must be a string"
        if v not in arg:
            return "PropertyConstraintViolation", name + " has no valid value"
    elif kind == NUM:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return "TypeConstraintViolation", name + " must be a number"
    elif kind == BOOL:
        if not isinstance(v, bool):
            return "TypeConstraintViolation", name + " must be a boolean"
    elif kind == OBJ:
        if not isinstance(v, dict):
            return "TypeConstraintViolation", name + " must be an object"
        if arg:
            return check(v, arg)
    elif kind == ARR:
        if not isinstance(v, list):
            return "TypeConstraintViolation", name + " must be an array"
        if arg:
            for item in v:
                err = check(item, arg)
                if err:
                    return err
    return None
