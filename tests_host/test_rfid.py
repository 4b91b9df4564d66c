"""The MFRC522 driver and the debounced reader (firmware/hal/rfid.py), over the fake `machine`'s
SPI bus to the simulated chip and card (firmware/simmachine/simrfid.py, simcard.py): 4, 7 and 10
byte UIDs, CRC_A, no card, no chip, and a card left on the reader reported once."""
import pytest

import hwsupport
from hal import rfid
from hal.rfid import Mfrc522, Reader, crc_a, id_tag


@pytest.fixture
def world():
    return hwsupport.use_fake_machine()


def reader(world, log=None):
    import machine

    r = world.board.RFID
    spi = machine.SPI(r["spi"], sck=machine.Pin(r["sck"]), mosi=machine.Pin(r["mosi"]),
                      miso=machine.Pin(r["miso"]))
    chip = Mfrc522(spi, machine.Pin(r["cs"], machine.Pin.OUT), machine.Pin(r["rst"],
                                                                           machine.Pin.OUT))
    return Reader(chip, log)


def test_crc_a_matches_the_standard(world):
    # ISO/IEC 14443-3 CRC_A (CRC-16/ISO-IEC-14443-3-A): check value 0xBF05 for "123456789".
    assert crc_a(b"123456789", 9) == 0xBF05
    from simcard import crc_a as chip_crc

    for data in (b"\x93\x70\x01\x02\x03\x04\x04", b"\x50\x00", b"\x08"):
        assert crc_a(data, len(data)) == chip_crc(data)


def test_init_finds_the_chip(world):
    logs = []
    r = reader(world, logs.append)
    assert r.start() and r.ok
    assert "rfid: MFRC522 version 0x92" in logs


@pytest.mark.parametrize("uid", [
    bytes([0xDE, 0xAD, 0xBE, 0xEF]),
    bytes([0x04, 0x52, 0x8A, 0x12, 0x6B, 0x51, 0x80]),
    bytes(range(0x10, 0x1A)),
])
def test_reads_uids_of_every_length(world, uid):
    r = reader(world)
    r.start()
    world.rfid.present(uid)
    tag = r.poll(0)
    assert tag == uid.hex().upper() and len(tag) == 2 * len(uid)
    assert world.rfid.card.state == 3  # halted after reading


def test_no_card_no_tag(world):
    r = reader(world)
    r.start()
    for t in range(0, 3000, 250):
        assert r.poll(t) is None


def test_a_card_left_on_the_reader_is_reported_once(world):
    r = reader(world)
    r.start()
    world.rfid.present(b"\x01\x02\x03\x04")
    seen = [r.poll(t) for t in range(0, 10000, 250)]
    assert [s for s in seen if s] == ["01020304"]
    world.rfid.present(None)  # taken away...
    for t in range(10000, 12000, 250):
        assert r.poll(t) is None
    world.rfid.present(b"\x01\x02\x03\x04")  # ...and shown again: a new presentation
    assert r.poll(12000) == "01020304"
    world.rfid.present(b"\x0a\x0b\x0c\x0d")  # another card at once
    assert r.poll(12250) == "0A0B0C0D"


def test_a_missing_chip_disables_the_reader(world):
    logs = []
    r = reader(world, logs.append)
    world.rfid_cs = None  # nothing answers on the bus: MISO floats high
    assert not r.start()
    assert r.poll(0) is None
    assert any("no MFRC522 found (version 0xFF)" in m for m in logs)


def test_a_glitch_on_the_bus_is_no_card(world, monkeypatch):
    r = reader(world)
    r.start()
    world.rfid.present(b"\x01\x02\x03\x04")
    monkeypatch.setattr(r.chip, "read_uid", lambda: (_ for _ in ()).throw(OSError(5)))
    assert r.poll(0) is None


def test_id_tag_is_upper_hex():
    assert id_tag(b"\xab\x01") == "AB01"
    assert rfid.VERSIONS
