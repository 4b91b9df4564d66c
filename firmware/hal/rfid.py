# RFID: an MFRC522 (NXP's ISO 14443A reader IC, on SPI) reading card UIDs, and a Reader that
# debounces them into idTags. Written from the MFRC522 datasheet and ISO/IEC 14443-3.
#
# Each poll wakes any card in the field (WUPA, which also wakes cards we halted), runs the
# anticollision loop through up to three cascade levels (4, 7 or 10 byte UIDs) and halts the card.
# The Reader reports a UID once, and again only after the card has been away for _GONE_MS, so a
# card left on the reader does not start and stop a session over and over. The idTag is the UID in
# upper-case hex (8, 14 or 20 characters: an OCPP idTag has at most 20).
from ocpp.compat import const, ticks_diff, ticks_ms

from .timing import sleep_ms

_COMMAND = const(0x01)
_COM_IRQ = const(0x04)
_ERROR = const(0x06)
_FIFO_DATA = const(0x09)
_FIFO_LEVEL = const(0x0A)
_CONTROL = const(0x0C)
_BIT_FRAMING = const(0x0D)
_COLL = const(0x0E)
_MODE = const(0x11)
_TX_CONTROL = const(0x14)
_TX_ASK = const(0x15)
_T_MODE = const(0x2A)
_T_PRESCALER = const(0x2B)
_T_RELOAD_H = const(0x2C)
_T_RELOAD_L = const(0x2D)
_VERSION = const(0x37)

_IDLE = const(0x00)
_TRANSCEIVE = const(0x0C)
_SOFT_RESET = const(0x0F)

_WUPA = const(0x52)
_HLTA = const(0x50)
_CASCADE_TAG = const(0x88)
_SELECT = (0x93, 0x95, 0x97)  # cascade levels 1-3

_TIMEOUT_MS = const(10)  # the chip's own timer gives up after ~5 ms; this guards a dead bus
_GONE_MS = const(1500)

VERSIONS = (0x88, 0x90, 0x91, 0x92, 0x12, 0xB2)  # MFRC522 v0.0-v2.0 and common clones


def crc_a(buf, n):
    """ISO/IEC 14443-3 CRC_A of buf[:n] (initial 0x6363), as an int: low byte is sent first."""
    crc = 0x6363
    for i in range(n):
        b = (buf[i] ^ crc) & 0xFF
        b = (b ^ (b << 4)) & 0xFF
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)
    return crc


def _crc_into(buf, n):
    # buf[:n] + its CRC_A: a frame of n + 2 bytes.
    crc = crc_a(buf, n)
    buf[n] = crc & 0xFF
    buf[n + 1] = crc >> 8


class Mfrc522:
    def __init__(self, spi, cs, rst=None):
        self._spi = spi
        self._cs = cs
        self._rst = rst
        self._io = bytearray(2)
        self._tx = bytearray(9)
        self._rx = bytearray(16)
        self.uid = bytearray(10)
        cs.value(1)

    # ---- registers --------------------------------------------------------------------------

    def _write(self, reg, value):
        io = self._io
        io[0] = (reg << 1) & 0x7E
        io[1] = value
        self._cs.value(0)
        self._spi.write(io)
        self._cs.value(1)

    def _read(self, reg):
        io = self._io
        io[0] = ((reg << 1) & 0x7E) | 0x80
        io[1] = 0
        self._cs.value(0)
        self._spi.write_readinto(io, io)
        self._cs.value(1)
        return io[1]

    def init(self):
        """Reset and configure the chip; returns its version byte (0 or 0xFF: no chip)."""
        if self._rst is not None:
            self._rst.value(0)
            sleep_ms(1)
            self._rst.value(1)
        self._write(_COMMAND, _SOFT_RESET)
        sleep_ms(50)  # the oscillator starts up
        # Timer: 13.56 MHz / (2 x 169 + 1) = 40 kHz, 200 ticks: give up on a card after 5 ms.
        self._write(_T_MODE, 0x80)  # TAuto: start with each transmission
        self._write(_T_PRESCALER, 169)
        self._write(_T_RELOAD_H, 0)
        self._write(_T_RELOAD_L, 200)
        self._write(_TX_ASK, 0x40)  # 100 % ASK modulation
        self._write(_MODE, 0x3D)  # CRC preset 0x6363
        self._write(_TX_CONTROL, self._read(_TX_CONTROL) | 0x03)  # antenna on
        return self._read(_VERSION)

    # ---- frames -----------------------------------------------------------------------------

    # Polled 4 times a second with no card in the field: that path allocates nothing, hence
    # the small methods (a large frame is allocated on the heap at every call: hal/__init__.py).

    def transceive(self, n, bits=0):
        """Send self._tx[:n] (the last byte only `bits` bits when nonzero); returns the number
        of bytes answered into self._rx, or -1 for no answer or a garbled one."""
        self._write(_COMMAND, _IDLE)
        self._write(_COM_IRQ, 0x7F)  # clear every interrupt bit
        self._write(_FIFO_LEVEL, 0x80)  # flush
        self._fill(n)
        self._write(_COMMAND, _TRANSCEIVE)
        self._write(_BIT_FRAMING, 0x80 | bits)  # StartSend
        answered = self._wait()
        self._write(_BIT_FRAMING, 0)
        return self._fetch() if answered else -1

    def _fill(self, n):
        tx = self._tx
        for i in range(n):
            self._write(_FIFO_DATA, tx[i])

    def _wait(self):
        """True once the card answered, False on silence (the chip's timer, or ours)."""
        t0 = ticks_ms()
        while True:
            irq = self._read(_COM_IRQ)
            if irq & 0x30:  # RxIRq or IdleIRq: an answer
                return True
            if irq & 0x01 or ticks_diff(ticks_ms(), t0) > _TIMEOUT_MS:  # TimerIRq: silence
                return False

    def _fetch(self):
        if self._read(_ERROR) & 0x1B:  # BufferOvfl, CollErr, ParityErr, ProtocolErr
            return -1
        got = self._read(_FIFO_LEVEL)
        if got > len(self._rx):
            return -1
        rx = self._rx
        for i in range(got):
            rx[i] = self._read(_FIFO_DATA)
        return got

    def read_uid(self):
        """The UID length (4, 7 or 10) of a card in the field, with its bytes in self.uid;
        0 when there is none (or two collide)."""
        self._tx[0] = _WUPA
        if self.transceive(1, 7) != 2:  # ATQA
            return 0
        return self._select()

    def _select(self):
        # Anticollision and SELECT through the cascade levels (ISO/IEC 14443-3 6.5.3).
        tx, rx, uid = self._tx, self._rx, self.uid
        got = 0
        for sel in _SELECT:
            tx[0] = sel
            tx[1] = 0x20  # anticollision: all 32 UID bits wanted
            if self.transceive(2) != 5 or rx[0] ^ rx[1] ^ rx[2] ^ rx[3] != rx[4]:
                return 0
            tx[1] = 0x70  # SELECT this UID part
            for i in range(5):
                tx[2 + i] = rx[i]
            _crc_into(tx, 7)
            # 4 UID bytes at this level, or 3 after the cascade tag (more at the next level).
            for i in range(1 if rx[0] == _CASCADE_TAG else 0, 4):
                uid[got] = rx[i]
                got += 1
            if self.transceive(9) != 3:  # SAK + CRC_A
                return 0
            if not rx[0] & 0x04:  # SAK: UID complete
                break
        self.halt()
        return got

    def halt(self):
        tx = self._tx
        tx[0] = _HLTA
        tx[1] = 0
        _crc_into(tx, 2)
        self.transceive(4)  # a halted card does not answer


class Reader:
    """A debounced card reader: poll() returns an idTag once per presentation of a card."""

    def __init__(self, chip, log=None):
        self.chip = chip
        self.log = log
        self.ok = False
        self._last = None  # the last UID reported, as bytes
        self._seen = 0  # ticks_ms when it was last in the field

    def start(self):
        try:
            v = self.chip.init()
        except OSError as e:
            v = 0
            if self.log:
                self.log("rfid: SPI error %r" % e)
        self.ok = v in VERSIONS
        if self.log:
            if self.ok:
                self.log("rfid: MFRC522 version 0x%02X" % v)
            else:
                self.log("rfid: no MFRC522 found (version 0x%02X); cards are not read" % v)
        return self.ok

    def poll(self, now=None):
        if not self.ok:
            return None
        n = self._read_uid()
        return self._seen_card(n, ticks_ms() if now is None else now) if n else None

    def _read_uid(self):
        try:
            return self.chip.read_uid()
        except OSError:  # the bus failed: no card this time
            return 0

    def _seen_card(self, n, now):
        # The idTag of a card just read (its UID's n bytes in chip.uid), unless it is the one
        # reported last and was never away for _GONE_MS.
        uid = self.chip.uid
        last = self._last
        same = last is not None and len(last) == n
        if same:
            for i in range(n):
                if last[i] != uid[i]:
                    same = False
                    break
        gone = ticks_diff(now, self._seen) > _GONE_MS
        self._seen = now
        if same and not gone:
            return None
        self._last = bytes(uid[:n])
        return id_tag(self._last)


def id_tag(uid):
    """A UID as an OCPP idTag: upper-case hex."""
    from binascii import hexlify

    return hexlify(uid).decode().upper()
