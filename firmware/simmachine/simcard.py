# A simulated ISO 14443A card in the field of the simulated MFRC522 (simrfid.py): REQA/WUPA,
# anticollision and SELECT through the cascade levels, HLTA. Host only; written from ISO/IEC
# 14443-3.
_IDLE, _READY, _ACTIVE, _HALT = 0, 1, 2, 3


def crc_a(data):
    # Bit by bit with the reflected polynomial: a different formulation from the driver's.
    crc = 0x6363
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


class Card:
    def __init__(self, uid):
        self.uid = bytes(uid)
        self.state = _IDLE
        self.level = 0
        n = len(uid)
        u = self.uid
        if n == 4:
            self.parts = [u]
        elif n == 7:
            self.parts = [b"\x88" + u[:3], u[3:]]
        elif n == 10:
            self.parts = [b"\x88" + u[:3], b"\x88" + u[3:6], u[6:]]
        else:
            raise ValueError("a UID has 4, 7 or 10 bytes")
        self.atqa = bytes([(0x04 | {4: 0, 7: 0x40, 10: 0x80}[n]), 0])

    def answer(self, frame, bits):
        """The card's reply to one frame, or None for silence."""
        if bits == 7 and len(frame) == 1:
            if (frame[0] == 0x26 and self.state == _IDLE) or frame[0] == 0x52:
                self.state, self.level = _READY, 0
                return self.atqa
            return None
        sel = (0x93, 0x95, 0x97)
        if self.state == _READY and len(frame) >= 2 and frame[0] in sel:
            level = sel.index(frame[0])
            if level == self.level:
                part = self.parts[level]
                bcc = part[0] ^ part[1] ^ part[2] ^ part[3]
                if frame[1] == 0x20 and len(frame) == 2:
                    return part + bytes([bcc])
                if (frame[1] == 0x70 and len(frame) == 9 and frame[2:7] == part + bytes([bcc])
                        and crc_a(frame[:7]) == frame[7] | frame[8] << 8):
                    more = level + 1 < len(self.parts)
                    sak = 0x04 if more else 0x08
                    if more:
                        self.level += 1
                    else:
                        self.state = _ACTIVE
                    c = crc_a(bytes([sak]))
                    return bytes([sak, c & 0xFF, c >> 8])
        if (self.state == _ACTIVE and len(frame) == 4 and frame[0] == 0x50 and frame[1] == 0
                and crc_a(frame[:2]) == frame[2] | frame[3] << 8):
            self.state = _HALT
            return None
        if self.state != _HALT:
            self.state = _IDLE  # anything unexpected sends a card back to IDLE
        return None
