# The Local Authorization List Management profile (1.6 spec §3.5.2, §3.5.3, §5.10, §5.15, §9.2):
# a list of idTags with their status, kept by the central system through SendLocalList (Full or
# Differential) and GetLocalListVersion, consulted before the Authorization Cache (auth.py).
#
# The list lives on flash, not in RAM: one file of fixed-size records sorted by idTag, found by
# binary search, so a list of LocalAuthListMaxLength entries costs no heap. An update writes a
# new file (a Differential one merged with the old) and renames it over the old one, so a power
# cut leaves the old list or the new, with its version. A header CRC covers the records; a damaged
# file is set aside and the list reads as empty (version 0), which tells the central system to
# send it again.
#
#   header  "OLL1", listVersion (int32), count (uint32), CRC32 of the records
#   record  idTag upper-cased (24 bytes, NUL-padded: idTags are case-insensitive, CiString20),
#           status (1: index in _STATUSES), expiryDate (uint32 UTC seconds, 0 = none),
#           parentIdTag (23 bytes, NUL-padded)
import os
import struct
from array import array
from binascii import crc32

from .. import clock, config, jscan, rpc, store
from ..compat import const
from ..payload import check

PROFILE = "LocalAuthListManagement"

_FILE = "locallist.bin"
_MAGIC = b"OLL1"
_HEAD = "<4siII"
_HEAD_SIZE = const(16)
_REC = "<24sBI23s"
_REC_SIZE = const(52)
_KEY = const(24)
_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
_DELETE = const(0xFF)  # the status of a new record that deletes its idTag
_LIST = "localAuthorizationList"

# The profile's configuration keys (§9.2). LocalAuthListMaxLength: 52 KB of flash when full;
# SendLocalListMaxLength: ~5 KB of JSON, well inside one message.
ROWS = dict(
    LocalAuthListEnabled=config.row(config.BOOL, "true"),
    LocalAuthListMaxLength=config.row(config.INT, "1000", 0, config.RO),
    SendLocalListMaxLength=config.row(config.INT, "50", 0, config.RO),
)

_ID_TAG_INFO = (
    ("expiryDate", rpc.TIME, None),
    ("parentIdTag", rpc.STR, 20),
    ("status", rpc.ENUM | rpc.REQ, _STATUSES),
)
_AUTH_DATA = (("idTag", rpc.STR | rpc.REQ, 20), ("idTagInfo", rpc.OBJ, _ID_TAG_INFO))
_SEND_LOCAL_LIST = (
    ("listVersion", rpc.INT | rpc.REQ, None),
    ("localAuthorizationList", rpc.ARR, _AUTH_DATA),
    ("updateType", rpc.ENUM | rpc.REQ, ("Differential", "Full")),
)


class LocalList:
    """cp.local_list: enabled() and get(tag) -> (status, parentIdTag) or None, for auth.py."""

    def __init__(self, cp):
        self.cp = cp
        self.path = None
        self.version = None  # read from flash on first use
        self.count = 0

    def enabled(self):
        return self.cp.config.get("LocalAuthListEnabled")

    def list_version(self):
        # §5.10: 0 is the empty list (also after a Full update without entries, TC_042_2).
        self._load()
        return self.version if self.count else 0

    def _load(self):
        if self.version is not None:
            return
        self.path = store.path(_FILE)
        self.version = self.count = 0
        try:
            f = open(self.path, "rb")
        except OSError:
            return  # no list yet
        with f:
            head = f.read(_HEAD_SIZE)
            ok = len(head) == _HEAD_SIZE
            if ok:
                magic, version, count, want = struct.unpack(_HEAD, head)
                ok = magic == _MAGIC and count <= 0xFFFF
            if ok:
                buf = bytearray(_REC_SIZE)
                crc = 0
                for _ in range(count):
                    if f.readinto(buf) != _REC_SIZE:
                        ok = False
                        break
                    crc = crc32(buf, crc)
                ok = ok and crc & 0xFFFFFFFF == want and not f.read(1)
        if not ok:
            self.cp.log("localauth: %s is damaged; the list is empty (version 0) until the "
                        "central system sends it again" % _FILE)
            try:
                os.rename(self.path, self.path + ".bad")
            except OSError:
                pass
            return
        self.version, self.count = version, count

    def get(self, tag):
        self._load()
        key = _key(tag) if self.count else None
        if key is None:
            return None
        with open(self.path, "rb") as f:
            lo, hi = 0, self.count
            while lo < hi:
                mid = (lo + hi) // 2
                f.seek(_HEAD_SIZE + mid * _REC_SIZE)
                rec = f.read(_REC_SIZE)
                k = rec[:_KEY]
                if k < key:
                    lo = mid + 1
                elif k > key:
                    hi = mid
                else:
                    return _decode(rec)
        return None

    def update(self, version, recs, full):
        """Write the list: recs yields the new records (_pack()) in idTag order, one at a time
        (one with status _DELETE deletes). Returns False (and leaves the list as it was) when
        the result would exceed LocalAuthListMaxLength."""
        self._load()
        limit = self.cp.config.get("LocalAuthListMaxLength")
        tmp = self.path + ".tmp"
        old = None
        if not full and self.count:
            old = open(self.path, "rb")
            old.seek(_HEAD_SIZE)
        n = crc = 0
        try:
            with open(tmp, "wb") as out:
                out.write(bytes(_HEAD_SIZE))  # the header goes in last, once count is known
                rec = old.read(_REC_SIZE) if old else None
                new = next(recs, None)
                while rec or new is not None:
                    mine = new is not None and (not rec or new[:_KEY] <= rec[:_KEY])
                    if mine:
                        if rec and new[:_KEY] == rec[:_KEY]:  # replaced or deleted
                            rec = old.read(_REC_SIZE)
                        w = None if new[_KEY] == _DELETE else new
                    else:
                        w, rec = rec, old.read(_REC_SIZE)
                    if w is not None:
                        n += 1
                        if n > limit:
                            break
                        out.write(w)
                        crc = crc32(w, crc)
                    if mine:  # (after the write: the next record takes the same buffer)
                        new = next(recs, None)
                out.seek(0)
                out.write(struct.pack(_HEAD, _MAGIC, version, n, crc & 0xFFFFFFFF))
        finally:
            if old:
                old.close()
        if n > limit:
            store.remove(_FILE + ".tmp")
            return False
        os.rename(tmp, self.path)
        self.version, self.count = version, n
        return True


def _key(tag):
    k = tag.upper().encode()
    return k + bytes(_KEY - len(k)) if len(k) <= _KEY else None


def _decode(rec):
    _, s, exp, parent = struct.unpack(_REC, rec)
    status = _STATUSES[s] if s < len(_STATUSES) else "Invalid"
    if status == "Accepted" and exp and clock.synced and clock.now() >= exp:
        status = "Expired"  # §3.5.4: valid but apparently expired by the passage of time
    parent = parent.rstrip(b"\0")
    return status, parent.decode() if parent else None


def _pack(rec, d):
    # Entry d (checked against _AUTH_DATA) as a record, into rec -> False when it cannot be
    # stored: an idTag too long for a key, a bad expiryDate, a parentIdTag too long.
    # Upper-cased and NUL-padded, the keys sort as the idTags do, case aside.
    key = _key(d["idTag"])
    if key is None:
        return False
    info = d.get("idTagInfo")
    if info is None:  # §5.15: a Differential update deletes the idTag
        struct.pack_into(_REC, rec, 0, key, _DELETE, 0, b"")
        return True
    exp = info.get("expiryDate")
    t = clock.parse(exp) if exp else 0
    parent = (info.get("parentIdTag") or "").encode()
    if t is None or not 0 <= t <= 0xFFFFFFFF or len(parent) > 23:
        return False
    struct.pack_into(_REC, rec, 0, key, _STATUSES.index(info["status"]), t, parent)
    return True


def _place(order, get, o, d):
    # Entry d, which get(o) returns, into order (the entries by idTag) where its key sorts, by
    # a binary search that reads the keys of the others from get() -> False when its idTag is
    # there already (§6.41). The entries are kept where they are (the message's text): only
    # where to find them is held, not 52 bytes each.
    key = _key(d["idTag"])
    lo, hi = 0, len(order)
    while lo < hi:
        mid = (lo + hi) // 2
        k = _key(get(order[mid])["idTag"])
        if k == key:
            return False
        if k < key:
            lo = mid + 1
        else:
            hi = mid
    n = len(order)
    order.append(o)
    if lo < n:  # (an array has no insert())
        order[lo + 1 :] = order[lo:n]
        order[lo] = o
    return True


def _records(get, order):
    # The entries of order, each packed in turn into the same record.
    rec = bytearray(_REC_SIZE)
    for o in order:
        _pack(rec, get(o))
        yield rec


def _getter(b):
    # The entry whose text starts at b[o] -> get(o), parsed.
    n = len(b)
    return lambda o: jscan.load(b, o, jscan.value_end(b, o, n))


def _walk(b, get, limit):
    # The SendLocalList payload's JSON text b (rpc hands a long one over unparsed), read a
    # piece at a time: each AuthorizationData is parsed on its own and checked, and where each
    # of the first `limit` starts (get() takes that) is put into order (_place), so that the
    # list never exists as dicts all at once (100 entries are ~21 KB of them on a 64-bit port),
    # nor as records (5.2 KB). -> (fields, order, n, ok): the payload's fields with the list
    # standing in as [] or [its first entry that fails _AUTH_DATA], which check() then reports
    # as it would the whole list; order; how many entries; False when one cannot be stored.
    # ValueError when b is not JSON: nothing is answered before all of it was read.
    i, e = jscan.one(b)
    fields = {}
    n, ok = 0, True
    wide = "H" if len(b) < 65536 else "I"  # order: offsets in b, 2 bytes each where they fit
    order = array(wide)
    rec = bytearray(_REC_SIZE)
    for k, v, s, e in jscan.members(b, i, e):
        name = jscan.load(b, k, v)
        if name != _LIST or b[s] != 0x5B:  # [
            fields[name] = jscan.load(b, s, e)
            continue
        bad = None
        n, ok = 0, True  # (of a list given twice, the second counts, as with json.loads)
        order = array(wide)
        for k, v in jscan.items(b, s, e):
            d = jscan.load(b, k, v)
            if bad is None:
                if check(d, _AUTH_DATA):
                    bad = d
                elif ok and n < limit:
                    ok = _pack(rec, d) and _place(order, get, k, d)
            n += 1
        fields[name] = [] if bad is None else [bad]
    return fields, order, n, ok


def setup(cp):
    ll = cp.local_list = LocalList(cp)
    cp.config.add(ROWS)

    def send_local_list(p):
        # §5.15, §7.47. p is the payload's JSON text (a memoryview) when the message is long,
        # else the payload (rpc.py: a handler with no description checks its payload itself).
        limit = cp.config.get("SendLocalListMaxLength")
        # order: where the entries to store are (get() takes that), in idTag order
        if isinstance(p, memoryview):
            get = _getter(p)  # an entry's offset in the text -> the entry
            p, order, n, ok = _walk(p, get, limit)
            err = check(p, _SEND_LOCAL_LIST)
        else:
            err = check(p, _SEND_LOCAL_LIST)
            entries = () if err else p.get(_LIST) or ()

            def get(i):  # an entry's index -> the entry
                return entries[i]

            n, ok = len(entries), True
            order = array("H")  # (a list would take 8 bytes an entry)
            rec = bytearray(_REC_SIZE)
            for i in range(min(n, limit)):
                ok = ok and _pack(rec, entries[i]) and _place(order, get, i, entries[i])
        if err:
            raise rpc.CallError(err[0], err[1])
        # A disabled list is treated as not supported, as GetLocalListVersion reports it (-1,
        # TC_042_1).
        if not ll.enabled():
            return {"status": "NotSupported"}
        version = p["listVersion"]
        full = p["updateType"] == "Full"
        if n > limit or version <= 0:
            return {"status": "Failed"}  # errata 3.52: versions 0 and -1 are reserved
        if not full and version <= ll.list_version():
            return {"status": "VersionMismatch"}
        if full:  # §7.1: a Full update's entries have idTagInfo
            for o in order:
                ok = ok and get(o).get("idTagInfo") is not None
        if not ok:
            return {"status": "Failed"}
        try:
            ok = ll.update(version, _records(get, order), full)
        except OSError as e:
            cp.log("localauth: list not written: %r" % e)
            ok = False
        cp.log("localauth: %s update to version %d: %s" % (p["updateType"], version,
                                                            "accepted" if ok else "failed"))
        return {"status": "Accepted" if ok else "Failed"}

    def get_local_list_version(p):
        return {"listVersion": ll.list_version() if ll.enabled() else -1}

    return {
        "SendLocalList": (None, send_local_list),
        "GetLocalListVersion": ((), get_local_list_version),
    }
