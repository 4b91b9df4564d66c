# Run by test_journal.py on the MicroPython unix port: the codec, the journal under a torn tail
# and a bit flip, a queue replayed after a "power cut" and then sent, the local list and the
# energy register, on the runtime the boards run. argv[1]: an empty folder to use as flash.
# Prints OK at the end.
import sys

from ocpp import config, jcodec, journal, register, store, txlog, txqueue
from ocpp.connector import Transaction
from ocpp.profiles import localauth

from outbox import send_next  # beside this script

store.dir = sys.argv[1]
LOG = []
TS = "2026-03-01T10:00:00Z"


def log(msg):
    LOG.append(msg)


# ---- codec
for p in (
    {"connectorId": 1, "idTag": "04A2B3C4D5E6F7", "meterStart": 12345, "timestamp": TS},
    {"meterStop": 5, "timestamp": TS, "reason": "PowerLoss", "idTag": "\u00e9t\u00e9"},
    {"connectorId": 2, "meterValue": [{"timestamp": TS, "sampledValue": [
        {"value": "1", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
         "unit": "Wh"}]}]},
    {"timestamp": "2026-03-01T10:00:00.5Z", "x": [1, None, True]},
):
    assert jcodec.unpack(jcodec.pack(p)) == p, p

# ---- journal: every record survives a torn tail and a flipped bit elsewhere
j = journal.Journal("j.bin", log)
offs = [j.append(0xA1 + i % 5, bytes([i]) * (i * 7 % 90 + (600 if i == 12 else 0)))
        for i in range(20)]  # one long record: checked in chunks before it is read
with open(j.path, "rb") as f:
    data = f.read()


def count():
    n = 0
    with journal.Journal("j.bin", log).reader() as r:
        while r.next() is not None:
            n += 1
    return n


for cut in (len(data) - 1, offs[10] + 3, offs[3]):
    with open(j.path, "wb") as f:
        f.write(data[:cut])
    assert count() == len([o for o in offs if o < cut]) - (0 if cut in offs else 1), cut
for spot in (offs[5] + 8, offs[12] + 300):
    bad = bytearray(data)
    bad[spot] ^= 1
    with open(j.path, "wb") as f:
        f.write(bad)
    assert count() == 19, spot

# ---- the queue: an offline transaction, a power cut, a reboot that ends it


class Cp:
    def __init__(self):
        self.info = {}
        self.log = log
        self.config = config.Config(log)
        self.connectors = [None, _C(), _C()]
        self.results = []

    def wake(self):
        pass

    def meter(self, cid, m):
        return 0  # a meter that forgot its count

    def on_tx_result(self, item):
        self.results.append(item)


class _C:
    finishing = False


cp = Cp()
q = txqueue.TxQueue(cp)
q.recover()
tx = Transaction(2, "MPTAG", 100, TS)
q.put("StartTransaction", {"connectorId": 2, "idTag": "MPTAG", "meterStart": 100,
                           "timestamp": TS}, tx)
tx.meter_last = 140
q.put("MeterValues", {"connectorId": 2, "meterValue": [{"timestamp": "2026-03-01T10:01:00Z",
      "sampledValue": [{"value": "140", "unit": "Wh"}]}]}, tx)
assert len(q) == 2
cp = Cp()  # the power went; a new boot
q = txqueue.TxQueue(cp)
q.recover()
assert len(q) == 3 and cp.connectors[2].finishing
with q.j.reader(q.head) as r:
    kinds = []
    while True:
        rec = r.next()
        if rec is None:
            break
        kinds.append(rec[1])
        last = rec
assert kinds == [txlog.START, txlog.METER_VALUES, txlog.STOP], kinds
stop = jcodec.unpack(memoryview(last[2])[2:])
assert stop == {"meterStop": 140, "timestamp": "2026-03-01T10:01:00Z", "reason": "PowerLoss"}

# ---- sending: the queue read back from flash, then a message queued into the empty queue goes
# from RAM; both as queued, with their transactionId
import asyncio  # noqa: E402

import json  # noqa: E402

sent = []


def wire(payload):
    # As rpc sends it: a MeterValues in the compact form comes as a function writing its JSON.
    if callable(payload):
        b = bytearray(4096)
        return json.loads(bytes(b[: payload(b, 0)]))
    return dict(payload)


async def call(action, payload, timeout_ms=None):
    sent.append((action, wire(payload)))
    return {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}


cp.call = call
while len(q):
    assert asyncio.run(send_next(q))
assert [a for a, _ in sent] == ["StartTransaction", "MeterValues", "StopTransaction"], sent
assert sent[2][1] == dict(stop, transactionId=7)
mv = {"connectorId": 2, "meterValue": [{"timestamp": "2026-03-01T10:02:00Z", "sampledValue": [
    {"value": "150", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
     "unit": "Wh"}]}]}
tx2 = Transaction(2, "MPTAG", 150, TS)
q.put("StartTransaction", {"connectorId": 2, "idTag": "MPTAG", "meterStart": 150,
                           "timestamp": TS}, tx2)
assert asyncio.run(send_next(q)) and not len(q)
q.put("MeterValues", dict(mv), tx2)
with q.j.reader(q.head) as r:
    rec = r.next()
    while rec[1] != txlog.METER_VALUES:
        rec = r.next()
assert rec[2][2] == 0  # journaled in the compact form
assert q.ready() and asyncio.run(send_next(q))
assert sent[-1] == ("MeterValues", dict(mv, transactionId=7)) and not len(q)

# ---- the local list


class LCp:
    def __init__(self):
        self.log = log
        self.config = config.Config(log)


lcp = LCp()
handlers = localauth.setup(lcp)
send = handlers["SendLocalList"][1]
entries = [{"idTag": "T%02d" % i, "idTagInfo": {"status": "Accepted"}} for i in range(30)]
assert send({"listVersion": 3, "updateType": "Full", "localAuthorizationList": entries}) == {
    "status": "Accepted"}
assert send({"listVersion": 4, "updateType": "Differential", "localAuthorizationList": [
    {"idTag": "t05"}, {"idTag": "NEW", "idTagInfo": {"status": "Blocked"}}]}) == {
    "status": "Accepted"}
assert send({"listVersion": 4, "updateType": "Differential"}) == {"status": "VersionMismatch"}
ll = localauth.LocalList(lcp)  # read back from flash
assert ll.list_version() == 4 and ll.count == 30
assert ll.get("T05") is None and ll.get("t06") == ("Accepted", None)
assert ll.get("NEW") == ("Blocked", None)

# ---- the energy register
reg = register.Register(2, log)
for wh in range(0, 350, 10):
    reg.update(1, wh)
assert reg.saves == 3
reg.flush()
assert register.Register(2).update(1, 0) == 340
print("OK")
