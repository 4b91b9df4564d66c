# Authorization of an idTag (1.6 spec §3.5, §4.1): the Local Authorization List (a profile, see
# profiles/localauth.py) first, then the Authorization Cache, then the central system, with the
# offline rules of LocalAuthorizeOffline, LocalPreAuthorize and AllowOfflineTxForUnknownId.
from . import clock, store
from .compat import const
from .rpc import CallError, Offline, Timeout

ACCEPTED = "Accepted"
TIMEOUT = "Timeout"  # no answer and no local rule could decide
_FILE = "authcache.json"
_MAX = const(64)  # entries; a full cache drops NOT-valid entries first, then the oldest (§3.5.1)


class Cache:
    """tag -> [status, expiry (UTC seconds) or None, parentIdTag or None, last use]. Kept on
    flash (§3.5.1: SHOULD persist across reboots) and rewritten only when it changes."""

    def __init__(self, cp):
        self.cp = cp
        self.entries = None  # loaded on first use: a charger that never authorises pays nothing
        self._use = 0

    def _load(self):
        if self.entries is None:
            data = store.load(_FILE, self.cp.log)
            self.entries = data if isinstance(data, dict) else {}
            for v in self.entries.values():
                self._use = max(self._use, v[3] if len(v) > 3 else 0)
        return self.entries

    def enabled(self):
        return self.cp.config.get("AuthorizationCacheEnabled")

    def get(self, tag):
        """(status, parentIdTag) or None; an entry past its expiryDate reads as Expired."""
        if not self.enabled():
            return None
        e = self._load().get(tag)
        if e is None:
            return None
        status = e[0]
        if status == ACCEPTED and e[1] is not None and clock.synced and clock.now() >= e[1]:
            status = e[0] = "Expired"  # §3.5.1: SHALL be changed to expired in the cache
        return status, e[2]

    def update(self, tag, info):
        """Record the idTagInfo of any Authorize / StartTransaction / StopTransaction answer."""
        if not self.enabled() or not isinstance(info, dict) or not info.get("status"):
            return
        ll = self.cp.local_list
        if ll is not None and ll.get(tag) is not None:
            return  # §3.5.3: identifiers of the local list are never cached
        entries = self._load()
        exp = info.get("expiryDate")
        exp = clock.parse(exp) if isinstance(exp, str) else None
        self._use += 1
        new = [info["status"], exp, info.get("parentIdTag"), self._use]
        old = entries.get(tag)
        if old is not None and old[:3] == new[:3]:
            old[3] = self._use  # same verdict: no flash write for a recency change alone
            return
        if old is None and len(entries) >= _MAX:
            self._evict(entries)
        entries[tag] = new
        self._save()

    def _evict(self, entries):
        victim = None
        for k, v in entries.items():
            if v[0] != ACCEPTED:
                victim = k
                break
            if victim is None or v[3] < entries[victim][3]:
                victim = k
        entries.pop(victim)

    def clear(self):
        self.entries = {}
        store.remove(_FILE)

    def _save(self):
        try:
            store.save(_FILE, self.entries)
        except OSError as e:
            self.cp.log("auth: cache not saved: %r" % e)


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
