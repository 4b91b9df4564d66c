# An append-only file of small records on flash (littlefs on the boards, the --state folder on the
# host), for the transaction message queue (txqueue.py). Each record is
#
#     kind (1 byte, 0xA0..0xAF)  length (2, little-endian)  CRC32 (4) of kind+length+body  body
#
# The file appends go to stays open, and each record is flushed at once: on littlefs flush() is a
# sync, which commits as close() does, so a power cut leaves at worst a torn last record. (Opening
# the file per record cost a path lookup and ~1.3 KB of heap on littlefs, 160 B on the unix port.)
# Reading checks every CRC: a torn or damaged record is dropped with a log line and the reader
# resynchronises on the next record whose CRC holds, so every intact record survives, wherever
# the damage is. Rewriting (to drop dead records) goes to a new file that is renamed over the old
# one: rename is atomic on littlefs and POSIX, so a power cut leaves either the old or the new
# journal, never a mix. Appends never rewrite what is already on flash, which keeps wear low.
import os
import struct
from binascii import crc32

from . import store
from .compat import MICROPYTHON, const

_HDR = const(7)
_SMALL = const(256)  # bodies up to this size are read at once; longer ones are checked in chunks
_MAX_BODY = const(8192)  # no OCPP message we queue comes near; a bigger length means damage


class Journal:
    def __init__(self, name, log):
        self.path = store.path(name)
        self.log = log
        self.size = _size(self.path)
        self.written = 0  # bytes written to flash since boot (appends and rewrites): wear
        self.damaged = 0  # bytes dropped while reading, since boot
        self._f = None  # the file appends go to, opened by the first one
        self._sync = True  # flush() after each record (see _open)
        self._new = None  # the file being written by a rewrite
        self._new_size = 0
        self._hdr = bytearray(_HDR)  # the header being written
        self._kl = memoryview(self._hdr)[:3]  # its kind and length: where the CRC starts
        try:  # a rewrite cut short by a power cut: the old journal is still whole
            os.remove(self.path + ".new")
        except OSError:
            pass

    def _put(self, f, kind, body):
        # Header and body in two writes from our buffers: nothing is copied together. A power
        # cut between them leaves a torn record, which the CRC tells like any other.
        h = self._hdr
        struct.pack_into("<BH", h, 0, kind, len(body))
        struct.pack_into("<I", h, 3, crc32(body, crc32(self._kl)))  # unsigned on both runtimes
        f.write(h)
        f.write(body)
        self.written += _HDR + len(body)
        return _HDR + len(body)

    def append(self, kind, body):
        """Write one record at the end; returns its offset. OSError when flash is full."""
        off = self.size
        try:
            f = self._f
            if f is None:
                f = self._open()
            self.size += self._put(f, kind, body)
            if self._sync:
                f.flush()
        except OSError:
            # Part of the record may be on flash: later offsets must follow the file.
            self.close()
            self.size = _size(self.path)
            raise
        return off

    def _open(self):
        f = self._f = open(self.path, "ab")
        # What flush() must do for a record to survive a power cut: littlefs (and FAT) commit
        # a file's data only at sync or close, and CPython buffers writes. The unix port's
        # files (the only MicroPython ones with a fileno) write straight to the OS, and their
        # flush() is an fsync (~120 us), which close() never did either: left out there.
        self._sync = not (MICROPYTHON and hasattr(f, "fileno"))
        return f

    def close(self):
        """Close the file appends go to (the next append opens it again)."""
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def reader(self, off=0):
        return Reader(self, off)

    def read(self, off):
        """(kind, body) of the intact record at off, or None."""
        with Reader(self, off, True) as r:
            rec = r.next()
        return None if rec is None or rec[0] != off else rec[1:]

    # ---- rewriting ----------------------------------------------------------------------------

    def begin(self):
        """Start a new journal; add() records to it, then commit() puts it in place."""
        self.close()  # appends must go to the new file once it is renamed over the old one
        self._new = open(self.path + ".new", "wb")
        self._new_size = 0

    def add(self, kind, body):
        """Add a record to the new journal; returns its offset there."""
        off = self._new_size
        self._new_size += self._put(self._new, kind, body)
        return off

    def commit(self):
        self.close()
        self._new.close()
        self._new = None
        os.rename(self.path + ".new", self.path)
        self.size = self._new_size

    def abort(self):
        if self._new is not None:
            self._new.close()
            self._new = None
            try:
                os.remove(self.path + ".new")
            except OSError:
                pass


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


class Reader:
    """Records from an offset on: next() -> (offset, kind, body) or None at the end. Use with
    `with`, so the file is closed even when the caller stops early."""

    def __init__(self, journal, off, single=False):
        self.j = journal
        self.off = off
        self.single = single  # read one record or nothing: damage is reported by full scans
        self.quiet = False  # damage already reported by an earlier scan
        self.f = None
        self._buf = None
        try:
            self.f = open(journal.path, "rb")
            self.f.seek(off)
        except OSError:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.f is not None:
            self.f.close()
            self.f = None

    def next(self):
        f = self.f
        if f is None:
            return None
        bad = -1  # where a damaged stretch began
        off = self.off
        while True:
            hdr = f.read(_HDR)
            if len(hdr) < _HDR:
                if hdr and bad < 0:
                    bad = off
                break
            kind, n, crc = struct.unpack("<BHI", hdr)
            if kind & 0xF0 == 0xA0 and n <= _MAX_BODY:
                body = self._body(f, n, crc32(hdr[:3]), crc)
                if body is not None:
                    if bad >= 0:
                        self._dropped(bad, off)
                    self.off = off + _HDR + n
                    return off, kind, body
            if self.single:
                break
            if bad < 0:
                bad = off
            off += 1  # resynchronise: look for the next intact record one byte further on
            f.seek(off)
        if bad >= 0 and not self.single:
            self._dropped(bad, max(self.j.size, bad + 1))
        self.off = off
        self.close()
        return None

    def _body(self, f, n, crc, want):
        # The body if it is whole and its CRC holds, else None. A long one is checked in chunks
        # before it is read: a damaged length must not make us allocate kilobytes for garbage.
        if n <= _SMALL:
            body = f.read(n)
            if len(body) == n and crc32(body, crc) == want:
                return body
            return None
        start = f.tell()
        if self._buf is None:
            self._buf = bytearray(_SMALL)
        mv = memoryview(self._buf)
        left = n
        while left:
            k = f.readinto(mv[: min(left, _SMALL)])
            if not k:
                return None
            crc = crc32(mv[:k], crc)
            left -= k
        if crc != want:
            return None
        f.seek(start)
        return f.read(n)

    def _dropped(self, start, end):
        if self.quiet:
            return
        self.j.damaged += end - start
        self.j.log("journal: %d damaged or torn bytes at offset %d dropped" % (end - start, start))
