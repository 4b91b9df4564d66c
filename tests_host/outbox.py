# The engine's outbox step (chargepoint.py sends the head of the queue inline, without a
# function of its own), written out for the journal's tests. Shared by test_journal.py (CPython)
# and mp_journal_check.py (MicroPython, which finds it beside the script).
from ocpp.rpc import CallError, Offline, Timeout


async def send_next(q):
    # Send the head of the queue if it is due, as the engine's outbox does -> True when
    # something was sent.
    p = q.begin() if q.ready() else None
    if p is None or p is True:
        return p is True
    try:
        q.answered(await q.cp.call(q.action, p))
    except (Offline, Timeout):
        q.lost()
        raise
    except CallError as e:
        q.refused(e.code)
    return True
