# Authorization of an idTag (1.6 spec §3.5, §4.1): the Local Authorization List (a profile, see
# profiles/localauth.py) first, then the Authorization Cache, then the central system, with the
# offline rules of LocalAuthorizeOffline, LocalPreAuthorize and AllowOfflineTxForUnknownId.
import struct
from binascii import crc32

from . import clock, store
from .compat import const
from .rpc import CallError, Offline, Timeout

ACCEPTED = "Accepted"
TIMEOUT = "Timeout"  # no answer and no local rule could decide
_FILE = "authcache.bin"
_MAX = const(64)  # entries; a full cache drops NOT-valid entries first, then the oldest (§3.5.1)
_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
# One fixed-size slot per entry: status (index in _STATUSES + 1; 0 = a free slot), idTag
# upper-cased (CiString20: case-insensitive), expiryDate (UTC seconds, 0 = none), parentIdTag,
# last use (a counter), CRC32 of the rest (a slot torn by a power cut reads as free).
_FORM = "<B20sI20sI"
_REC_SIZE = const(53)
_BODY = const(49)  # the slot less its CRC


def _key(tag):
    k = tag.upper().encode() if isinstance(tag, str) else b""
    return k + bytes(20 - len(k)) if 0 < len(k) <= 20 else None


def _u32(b, i):
    return b[i] | b[i + 1] << 8 | b[i + 2] << 16 | b[i + 3] << 24


class Cache:
    """The Authorization Cache (§3.5.1), kept on flash, not in RAM: _MAX slots of one file
    (3.4 KB), scanned through one slot-sized buffer and rewritten a slot at a time. As JSON
    objects in RAM a full cache cost ~9 KB. It persists across reboots, as it SHOULD. Nothing
    of it stays in RAM between uses: the buffer, made per scan, would otherwise sit for good
    wherever the heap had room at the first Authorize, splitting a free block."""

    def __init__(self, cp):
        self.cp = cp

    def enabled(self):
        return self.cp.config.get("AuthorizationCacheEnabled")

    def _find(self, key):
        """(slot of key or -1, its _FORM fields or None, slot for a new entry, top use counter);
        a new entry goes to a free slot, else the first NOT-valid one, else the oldest written."""
        buf = bytearray(_REC_SIZE)
        body = memoryview(buf)[:_BODY]
        entry = None
        found = free = not_valid = oldest = -1
        top = oldest_use = 0
        try:
            f = open(store.path(_FILE), "rb")
        except OSError:
            return -1, None, 0, 0
        with f:
            for i in range(_MAX):
                if f.readinto(buf) != _REC_SIZE:
                    free = i if free < 0 else free
                    break
                use = _u32(buf, _BODY - 4)
                if not buf[0] or _u32(buf, _BODY) != crc32(body) & 0xFFFFFFFF:
                    free = i if free < 0 else free
                    continue
                top = max(top, use)
                if buf.find(key, 1, 21) == 1:
                    found, entry = i, struct.unpack(_FORM, body)
                if buf[0] != 1:  # not Accepted
                    not_valid = i if not_valid < 0 else not_valid
                elif oldest < 0 or use < oldest_use:
                    oldest, oldest_use = i, use
        return found, entry, free if free >= 0 else not_valid if not_valid >= 0 else oldest, top

    def _write(self, slot, status, key, exp, parent, use):
        body = struct.pack(_FORM, status, key, exp, parent, use)
        try:
            try:
                f = open(store.path(_FILE), "r+b")
            except OSError:
                f = open(store.path(_FILE), "wb")
            with f:
                f.seek(slot * _REC_SIZE)
                f.write(body)
                f.write(struct.pack("<I", crc32(body) & 0xFFFFFFFF))
        except OSError as e:
            self.cp.log("auth: cache not saved: %r" % e)

    def get(self, tag):
        """(status, parentIdTag) or None; an entry past its expiryDate reads as Expired."""
        key = _key(tag)
        if key is None or not self.enabled():
            return None
        slot, entry, _, _ = self._find(key)
        if slot < 0:
            return None
        st, _, exp, parent, use = entry
        status = _STATUSES[st - 1] if st <= len(_STATUSES) else "Invalid"
        if status == ACCEPTED and exp and clock.synced and clock.now() >= exp:
            status = "Expired"  # §3.5.1: SHALL be changed to expired in the cache
            self._write(slot, 3, key, exp, parent, use)
        parent = parent.rstrip(b"\0")
        return status, parent.decode() if parent else None

    def update(self, tag, info):
        """Record the idTagInfo of any Authorize / StartTransaction / StopTransaction answer."""
        if not self.enabled() or not isinstance(info, dict):
            return
        status = info.get("status")
        ll = self.cp.local_list
        if status not in _STATUSES or (ll is not None and ll.get(tag) is not None):
            return  # §3.5.3: identifiers of the local list are never cached
        key = _key(tag)
        parent = info.get("parentIdTag")
        parent = parent.encode() if isinstance(parent, str) else b""
        if key is None or len(parent) > 20:
            return  # not an idTag of the spec's size: nothing we could store faithfully
        exp = info.get("expiryDate")
        exp = (clock.parse(exp) if isinstance(exp, str) else None) or 0  # 0: no expiry
        exp = 1 if exp < 0 else min(exp, 0xFFFFFFFF)
        st = _STATUSES.index(status) + 1
        slot, old, new, top = self._find(key)
        if slot >= 0:
            if old[0] == st and old[2] == exp and old[3].rstrip(b"\0") == parent:
                return  # the same verdict: no flash write
        else:
            slot = new
        self._write(slot, st, key, exp, parent, top + 1)

    def clear(self):
        store.remove(_FILE)


def local(cp, tag):
    """What the charger itself knows of tag: (status, parentIdTag, from_list) or None. The local
    list has priority over the cache (§3.5.3)."""
    ll = cp.local_list
    if ll is not None and ll.enabled():
        r = ll.get(tag)
        if r is not None:
            return r[0], r[1], True
    r = cp.auth_cache.get(tag)
    if r is not None:
        return r[0], r[1], False
    return None


async def authorize(cp, tag, timeout_ms):
    """-> (status, parentIdTag)."""
    known = local(cp, tag)
    online = cp.connected and cp.registration == ACCEPTED
    if online:
        if known and known[0] == ACCEPTED and cp.config.get("LocalPreAuthorize"):
            return known[0], known[1]  # §3.5: start without waiting for the central system
        try:
            r = await cp.call("Authorize", {"idTag": tag}, timeout_ms)
            info = r.get("idTagInfo") or {}
            cp.auth_cache.update(tag, info)
            return info.get("status", "Invalid"), info.get("parentIdTag")
        except (Offline, Timeout):
            pass  # decide as if offline
        except CallError as e:
            cp.log("auth: Authorize failed: %s" % e.code)
            return "Invalid", None
    if known is not None:
        # §3.5.4: a known identifier that is not valid is refused, also when offline.
        if known[0] != ACCEPTED or cp.config.get("LocalAuthorizeOffline"):
            return known[0], known[1]
    elif cp.config.get("AllowOfflineTxForUnknownId"):
        return ACCEPTED, None
    return TIMEOUT, None
