# Run by test_journal.py on the MicroPython unix port: the journal on littlefs (VfsLfs2 over a
# RAM block device), cut at every block the file system writes. journal.py keeps its append file
# open and relies on flush() (a littlefs sync) to commit each record: for every cut, the flash
# as it was then, mounted again, must hold every record whose append() had returned, intact, and
# nothing but those and the one being written (whole or dropped, never damaged in between). A
# rewrite (compact) runs midway, so cuts also fall between its new file and the rename.
# Prints "OK <cuts>" at the end. argv[1] == "noflush": the same with flush() made a no-op, which
# must fail (the check can tell).
import sys

import vfs
from ocpp import journal, store

_BS = const(512)
_BLOCKS = const(32)


class RAM:
    def __init__(self, data=None):
        self.data = bytearray(data) if data is not None else bytearray(_BS * _BLOCKS)
        self.cuts = None  # while recording: a copy of the flash before each block write

    def readblocks(self, b, buf, off=0):
        o = b * _BS + off
        buf[:] = self.data[o : o + len(buf)]

    def writeblocks(self, b, buf, off=None):
        if self.cuts is not None:
            self.cuts.append((len(DONE), bytes(self.data)))
        o = b * _BS + (off or 0)
        self.data[o : o + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return _BLOCKS
        if op == 5:
            return _BS
        if op == 6:  # erase
            self.data[arg * _BS : (arg + 1) * _BS] = b"\xff" * _BS
            return 0
        return 0


def records(path):
    j = journal.Journal(path, LOG.append)
    out = []
    with j.reader() as r:
        while True:
            rec = r.next()
            if rec is None:
                return out
            out.append((rec[1], bytes(rec[2])))


LOG = []
DONE = []  # (kind, body) of every append that returned, in order; a rewrite keeps the last 3
bd = RAM()
vfs.VfsLfs2.mkfs(bd, readsize=64, progsize=64, lookahead=64)
vfs.mount(vfs.VfsLfs2(bd, readsize=64, progsize=64, lookahead=64), "/flash")
store.dir = "/flash"
j = journal.Journal("j.bin", LOG.append)
NOFLUSH = sys.argv[1:] == ["noflush"]
if NOFLUSH:

    def _open():
        f = journal.Journal._open(j)
        j._sync = False
        return f

    j._open = _open
bd.cuts = []
KEEP = 3
for i in range(40):
    if i == 20:  # a rewrite keeping the last KEEP records, as txlog.compact does
        j.begin()
        for kind, body in DONE[-KEEP:]:
            j.add(kind, body)
        j.commit()
        del DONE[:-KEEP]
        bd.cuts.append((-1, bytes(bd.data)))  # marks the rewrite: cuts before see the old
    rec = (0xA1 + i % 5, bytes([i]) * (5 + i * 13 % 70))
    j.append(*rec)
    DONE.append(rec)
    if i % 7 == 3 and not NOFLUSH:  # a reader while the append file is open
        assert records("j.bin")[-1] == rec
cuts = bd.cuts
bd.cuts = None
vfs.umount("/flash")

# Replay every cut: the flash as it was before some block write, mounted again. `done` is how
# many appends had returned then (counted from the rewrite on, its KEEP records included).
SEQ = [(0xA1 + i % 5, bytes([i]) * (5 + i * 13 % 70)) for i in range(40)]
checked = 0
after = False  # past the rewrite's rename
for done, image in cuts:
    if done < 0:
        after = True
        continue
    dev = RAM(image)
    vfs.mount(vfs.VfsLfs2(dev, readsize=64, progsize=64, lookahead=64), "/cut")
    store.dir = "/cut"
    got = records("j.bin")
    vfs.umount("/cut")
    base = 20 - KEEP if after else 0
    want = SEQ[base : base + done]
    ok = got == want or got == SEQ[base : base + done + 1]  # the record being written, whole
    if not after and done == 20:  # inside the rewrite: the old journal or the new one
        ok = ok or got == SEQ[20 - KEEP : 20]
    assert ok, (done, after, len(got), len(want))
    checked += 1
assert not LOG or all("damaged or torn" in m for m in LOG), LOG
print("OK", checked)
