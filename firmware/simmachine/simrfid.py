# A simulated MFRC522 on the fake SPI bus, with one ISO 14443A card that can be put in its field:
# enough of the chip (registers, FIFO, Transceive, interrupt flags) for hal/rfid.py to run
# unchanged on the host; the card is simcard.py, loaded when one is first presented. Host only;
# written from the datasheet.
from ocpp.compat import const

_COMMAND = const(0x01)
_COM_IRQ = const(0x04)
_DIV_IRQ = const(0x05)
_ERROR = const(0x06)
_FIFO_DATA = const(0x09)
_FIFO_LEVEL = const(0x0A)
_BIT_FRAMING = const(0x0D)
_VERSION = const(0x37)
_TRANSCEIVE = const(0x0C)
_SOFT_RESET = const(0x0F)


class Chip:
    def __init__(self):
        self.card = None
        self.transactions = 0
        self.reset()

    def reset(self):
        self.regs = bytearray(64)
        self.regs[_VERSION] = 0x92
        # The 64-byte FIFO, preallocated: the driver polls 4 times a second, and the simulator's
        # heap figures should be the firmware's. Bytes fifo[head:tail] are in it.
        self.fifo = bytearray(64)
        self._head = self._tail = 0
        self._addr = None

    def present(self, uid):
        """Put a card with this UID in the field (None takes it away)."""
        if uid is None:
            self.card = None
        else:
            from simcard import Card

            self.card = Card(uid)

    # ---- SPI --------------------------------------------------------------------------------

    def select(self):
        self._addr = None
        self.transactions += 1

    def xfer(self, w, r=None):
        # The first byte of a transaction is an address; when reading, each further byte is the
        # next address and the previous register's value comes back meanwhile.
        for i in range(len(w)):
            out = self._byte(w[i])
            if r is not None:
                r[i] = out

    def _byte(self, b):
        if self._addr is None:
            self._addr = b
            return 0
        if self._addr & 0x80:
            out = self._read((self._addr >> 1) & 0x3F)
            self._addr = b
            return out
        self._write((self._addr >> 1) & 0x3F, b)
        return 0

    def _read(self, reg):
        if reg == _FIFO_DATA:
            if self._head == self._tail:
                return 0
            self._head += 1
            return self.fifo[self._head - 1]
        if reg == _FIFO_LEVEL:
            return self._tail - self._head
        return self.regs[reg]

    def _write(self, reg, v):
        regs = self.regs
        if reg == _COMMAND:
            regs[reg] = v & 0x0F
            if v & 0x0F == _SOFT_RESET:
                self.reset()
        elif reg in (_COM_IRQ, _DIV_IRQ):
            if v & 0x80:
                regs[reg] |= v & 0x7F
            else:
                regs[reg] &= ~v & 0x7F
        elif reg == _FIFO_LEVEL:
            if v & 0x80:
                self._head = self._tail = 0
        elif reg == _FIFO_DATA:
            if self._tail < 64:
                self.fifo[self._tail] = v
                self._tail += 1
        elif reg == _BIT_FRAMING:
            regs[reg] = v & 0x7F
            if v & 0x80 and regs[_COMMAND] == _TRANSCEIVE:
                self._transceive(v & 0x07)
        else:
            regs[reg] = v

    def _transceive(self, bits):
        reply = None
        if self.card is not None:
            reply = self.card.answer(bytes(self.fifo[self._head : self._tail]), bits)
        self._head = self._tail = 0
        self.regs[_ERROR] = 0
        if reply is None:
            self.regs[_COM_IRQ] |= 0x01  # TimerIRq: the chip's timer ran out
        else:
            self.fifo[: len(reply)] = reply
            self._tail = len(reply)
            self.regs[_COM_IRQ] |= 0x30  # RxIRq | IdleIRq
