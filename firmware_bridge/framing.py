"""Cutting a noisy byte stream into MAVLink frames without losing the good ones.

pymavlink's own parser (MAVLink.parse_char) throws away a whole frame's worth of bytes when a frame fails
its CRC, and trusts the length byte of unknown message ids. On a radio link that means one corrupted
length byte can swallow the valid frames that follow it. This parser finds frame boundaries itself and
hands each candidate frame to pymavlink's MAVLink.decode (which checks the CRC, the signature, and
unpacks the fields); when a candidate fails, it skips only the start byte and searches again, so a valid
frame that begins inside a damaged one is still found. Every byte it discards is counted by cause, which
is what LineStats reports to the user.

Signature checking: pymavlink's MAVLink.check_signature records a stream's timestamp *before* comparing
the signature, so a forged frame with a far-future timestamp would lock the real sender out. We install
a replacement that verifies the signature first (same rules otherwise: MAVLink "Message Signing",
timestamps must increase per (link id, system, component), a new stream may be at most a minute old).
"""
from __future__ import annotations

import dataclasses
import hashlib
import struct
import threading
import types
from typing import Callable

from pymavlink.dialects.v20 import ardupilotmega as mavlink

STX_V1 = 0xFE
STX_V2 = 0xFD
_HEADER_V1 = 6
_HEADER_V2 = 10
_CRC = 2
_SIGNATURE = 13
_IFLAG_SIGNED = 0x01


@dataclasses.dataclass
class LineStats:
    """What arrived on the line and what was thrown away, by cause. All counters only grow."""

    bytes_received: int = 0
    bytes_sent: int = 0
    frames_ok: int = 0
    frames_sent: int = 0
    garbage_bytes: int = 0          # bytes outside any frame (noise, leftovers of broken frames)
    bad_frames: int = 0             # candidate frames that failed (CRC, impossible header, truncated)
    crc_errors: int = 0
    unknown_messages: int = 0       # well-formed frames whose id this dialect does not know (skipped whole, no fault)
    unsigned_rejected: int = 0      # signing on: a frame without a signature, dropped
    bad_signature: int = 0          # signing on: signed, but the signature or timestamp did not check
    seq_lost: int = 0               # frames missing in a sender's sequence numbers
    io_errors: int = 0              # read/write failures of the port or socket
    link_losses: int = 0            # times the link went stale or down
    reconnects: int = 0             # successful re-opens after a loss
    send_dropped: int = 0           # frames not sent (port down, no UDP peer yet, pty buffer full)

    @property
    def faults(self) -> int:
        """Everything that went wrong on the way in. Unknown messages are not faults: PX4 sends messages of
        MAVLink's development dialect (EVENT, CURRENT_EVENT_SEQUENCE, ...) that no ArduPilot dialect of
        pymavlink knows, on a perfectly clean link."""
        return self.bad_frames + self.unsigned_rejected + self.bad_signature

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["faults"] = self.faults
        return d


def _frame_length(buf: bytearray) -> int:
    """Length of the frame starting at buf[0] (an STX byte), 0 if not known yet, -1 if impossible."""
    if len(buf) < 3:
        return 0
    plen = buf[1]
    if buf[0] == STX_V2:
        incompat = buf[2]
        if incompat & ~_IFLAG_SIGNED:
            return -1
        return _HEADER_V2 + plen + _CRC + (_SIGNATURE if incompat & _IFLAG_SIGNED else 0)
    return _HEADER_V1 + plen + _CRC


class FrameParser:
    """Feed bytes in, get pymavlink messages out; faults are counted in `stats`, never raised."""

    def __init__(self, mav: "mavlink.MAVLink", stats: LineStats | None = None,
                 on_rejected: Callable[[str, int, int, int], None] | None = None):
        self.mav = mav
        self.stats = stats if stats is not None else LineStats()
        self.on_rejected = on_rejected  # (reason, msg_id, sysid, compid) of signature rejections
        self._buf = bytearray()
        self._last_seq: dict[tuple[int, int], int] = {}
        install_safe_signature_check(mav)

    def reset(self) -> None:
        """Forget a partial frame (after a reconnect the old bytes belong to nothing)."""
        self.stats.garbage_bytes += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list:
        self.stats.bytes_received += len(data)
        buf = self._buf
        buf += data
        out = []
        while buf:
            start = _find_stx(buf)
            if start < 0:
                self.stats.garbage_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.stats.garbage_bytes += start
                del buf[:start]
            n = _frame_length(buf)
            if n == 0 or (n > 0 and len(buf) < n):
                break  # wait for more bytes
            if n < 0:
                self._skip_start("bad header")
                continue
            if buf[0] == STX_V2 and _ids(buf)[0] not in mavlink.mavlink_map:
                # An id this dialect does not know: its CRC cannot be checked, so its length is believed
                # only when the frame after it checks out (otherwise it is noise, or a damaged frame)
                ok = self._vouched(buf, n)
                if ok is None:
                    break  # wait for the next frame
                if ok:
                    self._unknown(buf, n)
                else:
                    self._skip_start("unknown id, no valid frame after it")
                continue
            msg = self._decode(buf, n)
            if msg is not None:
                out.append(msg)
        return out

    def flush_stalled(self) -> list:
        """Called when the line has gone quiet: recover valid frames stuck behind a false start.

        A damaged frame (or noise that looks like a start byte) announces a length; the parser waits for
        that many bytes. If the line then goes quiet, a complete valid frame sitting behind it would wait
        forever, so here a later start byte whose frame decodes proves the first one false.
        """
        buf = self._buf
        out = []
        while buf:
            n = _frame_length(buf)
            if (n > 0 and len(buf) == n and buf[0] == STX_V2 and _ids(buf)[0] not in mavlink.mavlink_map
                    and buf[3] == 0 and not self._valid_frame_inside(buf, n)):
                self._unknown(buf, n)   # the last frame before the pause: nothing follows to vouch for it
                continue
            if n > 0 and len(buf) >= n:
                before = len(buf)
                got = self.feed(b"")
                out.extend(got)
                if got or len(buf) != before:
                    continue
                # An unknown frame whose voucher (the frame after it) has not fully come: feed can decide
                # nothing until more bytes arrive, so look past it for a valid frame that proves it false
            k = 1
            found = False
            while True:
                k = _find_stx_from(buf, k)
                if k < 0:
                    break
                m = _frame_length(buf[k:])
                if m > 0 and len(buf) - k >= m and _decodes(self.mav, buf[k:k + m]):
                    found = True
                    break
                k += 1
            if not found:
                break
            self.stats.bad_frames += 1
            self.stats.garbage_bytes += k
            del buf[:k]
            out.extend(self.feed(b""))
        return out

    def _vouched(self, buf: bytearray, n: int) -> bool | None:
        """Does a valid frame follow the unknown one that ends at n? None: not enough bytes yet.
        Valid: a known message whose CRC checks, or another unknown one from the same sender with a sound
        header (MAVLink 2 compat flags 0). The unknown frame's own header must be sound too."""
        if buf[3] != 0:
            return False
        if len(buf) < n + 10:
            return None
        if self._valid_frame_inside(buf, n):
            return False
        nxt = buf[n:]
        m = _frame_length(nxt)
        if m <= 0 or nxt[0] != STX_V2:
            return m == 0 and None
        if _ids(nxt)[0] in mavlink.mavlink_map:
            if len(nxt) < m:
                return None
            return _decodes(self.mav, nxt[:m])
        return nxt[3] == 0 and (nxt[5], nxt[6]) == (buf[5], buf[6])

    def _valid_frame_inside(self, buf: bytearray, n: int) -> bool:
        """Does a complete valid frame start inside the first n bytes? Then the frame they announce is false
        (a truncated frame's header, or noise, run together with the frames after it)."""
        k = _find_stx_from(buf, 1)
        while 0 < k < n:
            m = _frame_length(buf[k:])
            if m > 0 and len(buf) - k >= m and _decodes(self.mav, buf[k:k + m]):
                return True
            k = _find_stx_from(buf, k + 1)
        return False

    def _unknown(self, buf: bytearray, n: int) -> None:
        """A whole frame of an unknown message: counted apart, its sequence number kept, skipped."""
        self.stats.unknown_messages += 1
        self._count_seq((buf[5], buf[6]), buf[4])
        del buf[:n]

    def _count_seq(self, key: tuple[int, int], seq: int) -> None:
        last = self._last_seq.get(key)
        if last is not None:
            self.stats.seq_lost += (seq - last - 1) % 256
        self._last_seq[key] = seq

    def _skip_start(self, why: str) -> None:
        self.stats.bad_frames += 1
        self.stats.garbage_bytes += 1
        del self._buf[:1]

    def _decode(self, buf: bytearray, n: int):
        frame = bytearray(buf[:n])
        try:
            msg = self.mav.decode(frame)
        except mavlink.MAVError as exc:
            text = str(getattr(exc, "message", exc))
            if "signature" in text.lower():
                # The CRC passed (decode checks it first): a well-formed frame we refuse to trust.
                signed = frame[0] == STX_V2 and frame[2] & _IFLAG_SIGNED
                if signed:
                    self.stats.bad_signature += 1
                else:
                    self.stats.unsigned_rejected += 1
                if self.on_rejected is not None:
                    msg_id, sysid, compid = _ids(frame)
                    self.on_rejected("bad signature" if signed else "unsigned", msg_id, sysid, compid)
                del buf[:n]
                return None
            if "crc" in text.lower():
                self.stats.crc_errors += 1
            self._skip_start(text)
            return None
        except (struct.error, ValueError, IndexError, TypeError):
            self._skip_start("undecodable")
            return None
        if isinstance(msg, mavlink.MAVLink_unknown):
            # An unknown MAVLink 1 id (MAVLink 2 ones are handled in feed): the firmwares send their newer
            # messages as MAVLink 2 only, so on a MAVLink 1 start byte this is noise
            self._skip_start("unknown MAVLink 1 id")
            return None
        del buf[:n]
        self.stats.frames_ok += 1
        self._count_seq((msg.get_srcSystem(), msg.get_srcComponent()), msg.get_seq())
        return msg


def _find_stx(buf: bytearray) -> int:
    a = buf.find(STX_V2)
    b = buf.find(STX_V1)
    if a < 0:
        return b
    if b < 0:
        return a
    return min(a, b)


def _find_stx_from(buf: bytearray, start: int) -> int:
    a = buf.find(STX_V2, start)
    b = buf.find(STX_V1, start)
    if a < 0:
        return b
    if b < 0:
        return a
    return min(a, b)


def _decodes(mav, frame: bytearray) -> bool:
    """Would this frame pass its CRC? (Checked without touching signing state.)"""
    try:
        if frame[0] == STX_V2:
            msg_id = frame[7] | frame[8] << 8 | frame[9] << 16
            signed = bool(frame[2] & _IFLAG_SIGNED)
        else:
            msg_id, signed = frame[5], False
        cls = mavlink.mavlink_map.get(msg_id)
        if cls is None:
            return False
        end = len(frame) - (_SIGNATURE if signed else 0)
        crc = mavlink.x25crc(bytes(frame[1:end - 2]))
        crc.accumulate(bytes([cls.crc_extra]))
        return crc.crc == struct.unpack("<H", bytes(frame[end - 2:end]))[0]
    except (IndexError, struct.error):
        return False


def _ids(frame: bytearray) -> tuple[int, int, int]:
    if frame[0] == STX_V2:
        return frame[7] | frame[8] << 8 | frame[9] << 16, frame[5], frame[6]
    return frame[5], frame[3], frame[4]


_SIGNED_TS = struct.Struct("<IH")


def _safe_check_signature(self, msgbuf: bytearray, srcSystem: int, srcComponent: int) -> bool:
    """pymavlink's check, reordered: the signature must match before the timestamp is believed."""
    sig = self.signing
    if sig.secret_key is None:
        return False
    h = hashlib.sha256()
    h.update(sig.secret_key)
    h.update(msgbuf[:-6])
    if h.digest()[:6] != bytes(msgbuf[-6:]):
        return False
    tlow, thigh = _SIGNED_TS.unpack(bytes(msgbuf[-12:-6]))
    timestamp = tlow + (thigh << 32)
    link_id = msgbuf[-13]
    key = (link_id, srcSystem, srcComponent)
    with _TS_LOCK:
        last = sig.stream_timestamps.get(key)
        if last is not None:
            if timestamp <= last:
                return False  # replayed or reordered
        elif timestamp + 6000 * 1000 < sig.timestamp:
            return False      # a "new" stream more than a minute in the past: a replay
        sig.stream_timestamps[key] = timestamp
        sig.timestamp = max(sig.timestamp, timestamp)
    return True


_TS_LOCK = threading.Lock()


def install_safe_signature_check(mav) -> None:
    mav.check_signature = types.MethodType(_safe_check_signature, mav)
