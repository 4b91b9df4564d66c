"""The Local Authorization List Management profile and the energy register on CPython against
the fake central system: SendLocalList Full / Differential, the version rules, VersionMismatch,
Failed, a disabled list, GetLocalListVersion, persistence, priority over the cache, expiry, a
damaged list file; the register's monotonic, write-limited persistence; damaged config files."""
import asyncio
import os

import pytest

from ocpp import api, clock, config, register, store

INFO = {"vendor": "Acme", "model": "Wallbox", "connectors": 1, "profiles": ("localauth",)}
CS = {"url": "ws://cs", "cp_id": "CP1"}


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def meter(reason, cid, value):
    return 0 if reason == api.GET_METER_VALUE and value.startswith("Energy") else True


def entry(tag, status="Accepted", **info):
    return {"idTag": tag, "idTagInfo": dict(status=status, **info)}


async def online(csms, info=INFO, logs=None):
    cp = api.init(info, CS, meter, logs.append if logs is not None else None)
    cp.start()
    await csms.wait_for(lambda: cp.registration == "Accepted")
    return cp


async def send(csms, version, update, entries=None):
    p = {"listVersion": version, "updateType": update}
    if entries is not None:
        p["localAuthorizationList"] = entries
    return (await csms.call("SendLocalList", p))[2]["status"]


async def version(csms):
    return (await csms.call("GetLocalListVersion", {}))[2]["listVersion"]


def test_profile_keys_and_versions(csms):
    async def main():
        cp = await online(csms)
        assert "LocalAuthListManagement" in cp.config.get("SupportedFeatureProfiles")
        r = await csms.call("GetConfiguration", {"key": ["LocalAuthListEnabled",
                                                         "LocalAuthListMaxLength",
                                                         "SendLocalListMaxLength"]})
        keys = {k["key"]: (k["readonly"], k["value"]) for k in r[2]["configurationKey"]}
        assert keys == {"LocalAuthListEnabled": (False, "true"),
                        "LocalAuthListMaxLength": (True, "1000"),
                        "SendLocalListMaxLength": (True, "50")}
        assert await version(csms) == 0
        # TC_042_2: a Full update without entries is the empty list: version 0.
        assert await send(csms, 1, "Full") == "Accepted"
        assert await version(csms) == 0
        # TC_043_2: Full 2, Differential 5, then Differential 4 is a VersionMismatch.
        assert await send(csms, 2, "Full", [entry("A1"), entry("B2", "Blocked")]) == "Accepted"
        assert await version(csms) == 2
        assert await send(csms, 5, "Differential", [entry("C3")]) == "Accepted"
        assert await version(csms) == 5
        assert await send(csms, 4, "Differential", [entry("D4")]) == "VersionMismatch"
        assert await send(csms, 5, "Differential", [entry("D4")]) == "VersionMismatch"
        assert await version(csms) == 5
        # A Full update may go back to any version.
        assert await send(csms, 3, "Full", [entry("A1")]) == "Accepted"
        assert await version(csms) == 3
        await cp.stop()

    run(main())


def test_tags_in_any_case(csms):
    # idTags are CiString20: a list sent in lower or mixed case is found in any case, kept in
    # order with upper-case ones, and two spellings of one tag are a duplicate (Failed).
    async def main():
        cp = await online(csms)
        ll = cp.local_list
        tags = ["abc1", "ABC2", "aBc3", "123", "ABC0"]
        assert await send(csms, 1, "Full", [entry(t) for t in tags]) == "Accepted"
        assert all(ll.get(t.upper()) == ("Accepted", None) for t in tags)
        assert all(ll.get(t.lower()) == ("Accepted", None) for t in tags)
        assert await send(csms, 2, "Full", [entry("dup1"), entry("DUP1")]) == "Failed"
        assert await version(csms) == 1
        await cp.stop()

    run(main())


def test_full_and_differential_contents(csms):
    async def main():
        cp = await online(csms)
        ll = cp.local_list
        tags = ["T%03d" % i for i in range(40)]
        assert await send(csms, 1, "Full", [entry(t) for t in reversed(tags)]) == "Accepted"
        assert all(ll.get(t) == ("Accepted", None) for t in tags)
        assert ll.get("t005") == ("Accepted", None)  # idTags are case-insensitive (CiString)
        assert ll.get("T999") is None and ll.get("") is None
        diff = [entry("T005", "Blocked", parentIdTag="GROUP"), {"idTag": "T010"},
                entry("A000"), entry("Z999", "Expired"), {"idTag": "NOPE"}]
        assert await send(csms, 2, "Differential", diff) == "Accepted"
        assert ll.get("T005") == ("Blocked", "GROUP")
        assert ll.get("T010") is None
        assert ll.get("A000") == ("Accepted", None) and ll.get("Z999") == ("Expired", None)
        assert ll.count == 40 + 2 - 1
        # No effect, but the version moves (§6.41).
        assert await send(csms, 3, "Differential") == "Accepted" and ll.count == 41
        assert await version(csms) == 3
        await cp.stop()

    run(main())


@pytest.mark.parametrize("update, entries", [
    ("Full", [entry("X%d" % i) for i in range(51)]),  # more than SendLocalListMaxLength
    ("Full", [entry("DUP"), entry("dup")]),  # the same idTag twice (§6.41)
    ("Full", [{"idTag": "NOINFO"}]),  # Full requires idTagInfo (§7.1)
    ("Differential", [entry("BADDATE", expiryDate="yesterday")]),
])
def test_failed_updates_change_nothing(csms, update, entries):
    async def main():
        cp = await online(csms)
        assert await send(csms, 2, "Full", [entry("KEEP")]) == "Accepted"
        assert await send(csms, 7, update, entries) == "Failed"
        assert await version(csms) == 2 and cp.local_list.get("KEEP") == ("Accepted", None)
        await cp.stop()

    run(main())


def test_list_longer_than_its_maximum_fails(csms, monkeypatch):
    async def main():
        cp = await online(csms)
        cp.config.fixed["LocalAuthListMaxLength"] = 60
        assert await send(csms, 1, "Full", [entry("A%02d" % i) for i in range(50)]) == "Accepted"
        more = [entry("B%02d" % i) for i in range(11)]
        assert await send(csms, 2, "Differential", more) == "Failed"
        assert await send(csms, 2, "Differential", more[:10]) == "Accepted"
        assert cp.local_list.count == 60 and await version(csms) == 2
        assert not os.path.exists(store.path("locallist.bin.tmp"))
        await cp.stop()

    run(main())


def test_disabled_list_and_profile_not_in_use(csms):
    async def main():
        cp = await online(csms)
        assert await send(csms, 1, "Full", [entry("L1")]) == "Accepted"
        r = await csms.call("ChangeConfiguration", {"key": "LocalAuthListEnabled",
                                                    "value": "false"})
        assert r[2]["status"] == "Accepted"
        assert await version(csms) == -1  # TC_042_1
        assert await send(csms, 2, "Full", [entry("L2")]) == "NotSupported"
        await cp.stop()
        # TC_043_1: without the profile, SendLocalList is a known but unsupported action.
        cp = await online(csms, dict(INFO, profiles=()))
        r = await csms.call("SendLocalList", {"listVersion": 1, "updateType": "Full"})
        assert r[0] == 4 and r[2] == "NotSupported"
        assert cp.local_list is None
        await cp.stop()

    run(main())


def test_list_persists_and_wins_over_the_cache(csms):
    csms.down = False

    async def first():
        cp = await online(csms)
        assert await send(csms, 9, "Full", [entry("LIST1", "Blocked"),
                                            entry("LIST2", parentIdTag="P")]) == "Accepted"
        await cp.stop()

    run(first())

    async def reboot():
        cp = await online(csms)
        assert cp.local_list.get("LIST1") == ("Blocked", None)
        assert await version(csms) == 9
        # §3.5.3: the list has priority over the cache, and its identifiers are never cached.
        cp.auth_cache.update("LIST1", {"status": "Accepted"})
        assert cp.auth_cache.get("LIST1") is None
        csms.down = True
        await cp.ws.close()
        await csms.wait_for(lambda: not cp.connected)
        sess = cp.session_open(1)
        assert await sess.authorize("LIST1", 100) == "Blocked"
        assert await sess.authorize("LIST2", 100) == "Accepted"
        assert sess.parent_id_tag == "P"
        await cp.stop()

    run(reboot())


def test_expired_entries_read_as_expired(csms):
    async def main():
        cp = await online(csms)  # the fake central system sets the clock to 2026-01-01
        assert clock.synced
        assert await send(csms, 1, "Full", [
            entry("OLD", expiryDate="2025-12-31T23:59:59Z"),
            entry("NEW", expiryDate="2026-06-01T00:00:00+02:00")]) == "Accepted"
        assert cp.local_list.get("OLD") == ("Expired", None)
        assert cp.local_list.get("NEW") == ("Accepted", None)
        await cp.stop()

    run(main())


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_list_file_reads_as_empty(csms, damage):
    async def first():
        cp = await online(csms)
        assert await send(csms, 4, "Full", [entry("T%d" % i) for i in range(10)]) == "Accepted"
        await cp.stop()

    run(first())
    path = store.path("locallist.bin")
    data = bytearray(open(path, "rb").read())
    if damage == "truncate":
        data = data[:-5]
    elif damage == "flip":
        data[100] ^= 4
    elif damage == "empty":
        data = b""
    else:
        data = b"\xff" * 300
    open(path, "wb").write(data)
    logs = []

    async def reboot():
        cp = await online(csms, logs=logs)
        assert await version(csms) == 0
        assert cp.local_list.get("T1") is None
        assert await send(csms, 5, "Full", [entry("T1")]) == "Accepted"
        assert cp.local_list.get("T1") == ("Accepted", None)
        await cp.stop()

    run(reboot())
    assert any("locallist.bin is damaged" in m for m in logs)


# ---- the energy register ------------------------------------------------------------------------

@pytest.fixture
def flash(monkeypatch, tmp_path):
    monkeypatch.setattr(store, "dir", str(tmp_path))
    return tmp_path


def test_register_is_monotonic_and_write_limited(flash):
    reg = register.Register(2, step_wh=100, period_s=300)
    assert reg.get(1) == 0
    for wh in range(0, 1001, 10):
        assert reg.update(1, wh) == wh
    assert reg.saves == 10  # one per 100 Wh, not one per reading
    assert reg.update(1, 500) == 1000  # a meter that went backwards does not drag it down
    reg.update(1, 1050)
    reg.update(2, 7)
    reg.flush()  # at a transaction's start or stop: exact
    again = register.Register(2)
    assert (again.get(1), again.get(2)) == (1050, 7)
    assert again.update(1, 0) == 1050  # after a reboot the meter counts from 0: the register not


def test_register_reports_only_what_is_on_flash(flash):
    reg = register.Register(1, step_wh=100)
    reg.update(1, 40)
    assert reg.saves == 0
    assert reg.report(1, 45) == 45 and reg.saves == 1  # the library may journal 45: saved
    assert reg.report(1, 45) == 45 and reg.saves == 1  # unchanged: no write
    assert register.Register(1).get(1) == 45


def test_register_saves_after_the_period(flash, monkeypatch):
    now = [0]
    monkeypatch.setattr(register, "ticks_ms", lambda: now[0])
    reg = register.Register(1, step_wh=100, period_s=60)
    reg.update(1, 5)
    assert reg.saves == 0
    now[0] = 61000
    reg.update(1, 6)
    assert reg.saves == 1 and register.Register(1).get(1) == 6


@pytest.mark.parametrize("content", [b"", b"[12, 3", b'{"a": 1}', b"[1, 2\xff]", b"null"])
def test_damaged_register_and_config_files_start_clean(flash, content):
    (flash / "energy.json").write_bytes(content)
    (flash / "config.json").write_bytes(content)
    logs = []
    reg = register.Register(1, logs.append)
    assert reg.get(1) == 0
    cfg = config.Config(logs.append)
    assert cfg.get("HeartbeatInterval") == 300
    assert bool(logs) == (content not in (b"null",))
    reg.update(1, 300)
    assert register.Register(1).get(1) == 300
