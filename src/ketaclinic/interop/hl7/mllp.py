"""MLLP framing: ``<SB> message <EB><CR>`` with SB 0x0B, EB 0x1C, CR 0x0D (interop.md §3.4).

:class:`FrameDecoder` is incremental and never raises on input: it takes whatever the socket gave
(part of a frame, several frames, noise between frames) and returns events — a complete
:class:`Frame`, :class:`Junk` (bytes outside a frame, or a frame cut short by a new start block, or
left over at end of stream) or :class:`Oversized` (a frame past the size limit, dropped without
buffering the rest: the buffer never holds more than the limit, issue 15 H4). Monitors keep one connection open and stream (§3.4), so nothing here stalls:
after junk or an oversized frame, decoding resumes at the next start block.

A frame is delivered as soon as its EB arrives; the CR that should follow is consumed when it comes
(even in the next read) and is not required.

The asyncio helpers wrap a ``StreamReader``/``StreamWriter``; the listener (ACKs, database) is
the app's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from ketaclinic.interop.hl7.bounds import DEFAULT_MAX_MESSAGE_BYTES

SB: Final = b"\x0b"
EB: Final = b"\x1c"
CR: Final = b"\x0d"
DEFAULT_MAX_FRAME_BYTES: Final = DEFAULT_MAX_MESSAGE_BYTES  # vitals messages are a few kB
HEAD_BYTES: Final = 4096  # kept from an oversized frame so its MSH can be read for an ACK

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    payload: bytes


@dataclass(frozen=True)
class Junk:
    data: bytes
    reason: str

    @property
    def is_whitespace(self) -> bool:
        return not self.data.strip()


@dataclass(frozen=True)
class Oversized:
    """A frame longer than the limit. ``head`` is its beginning (MSH is there) for an AR ACK."""

    size: int  # bytes seen when the limit was passed
    limit: int
    head: bytes

    @property
    def reason(self) -> str:
        return f"message larger than {self.limit} bytes was dropped"


Event = Frame | Junk | Oversized


class _State(Enum):
    OUTSIDE = auto()
    INSIDE = auto()
    DISCARD = auto()  # inside an oversized frame


class FrameDecoder:
    """Feed bytes, get events. ``max_frame_bytes`` bounds memory per frame."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes <= 0:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes: int = max_frame_bytes
        self._state = _State.OUTSIDE
        self._buf = bytearray()
        self._junk = bytearray()
        self._expect_cr = False  # a frame just ended on EB; its CR may come in the next read

    @property
    def idle(self) -> bool:
        """True when no partial frame is pending (safe point to close a connection)."""
        return self._state is _State.OUTSIDE

    def _flush_junk(self, out: list[Event], reason: str = "bytes outside a frame") -> None:
        if self._junk:
            out.append(Junk(bytes(self._junk), reason))
            self._junk.clear()

    def _finish_frame(self, out: list[Event]) -> None:
        # Delivered at EB, not at CR: a sender that omits the CR and waits for its ACK must not hang.
        out.append(Frame(bytes(self._buf)))
        self._buf.clear()
        self._state = _State.OUTSIDE
        self._expect_cr = True

    def _start_frame(self, out: list[Event]) -> None:
        self._flush_junk(out)
        self._buf.clear()
        self._state = _State.INSIDE

    def feed(self, data: bytes) -> list[Event]:
        out: list[Event] = []
        i, n = 0, len(data)
        while i < n:
            state = self._state
            if self._expect_cr:
                self._expect_cr = False
                if state is _State.OUTSIDE and data[i : i + 1] == CR:
                    i += 1
                    continue
            if state is _State.OUTSIDE:
                j = data.find(SB, i)
                if j == -1:
                    self._junk += data[i:]
                    break
                self._junk += data[i:j]
                self._start_frame(out)
                i = j + 1
            elif state is _State.INSIDE:
                i = self._consume_inside(data, i, out)
            else:  # DISCARD: skip to the end of the frame or the next start block
                j_eb, j_sb = data.find(EB, i), data.find(SB, i)
                if j_sb != -1 and (j_eb == -1 or j_sb < j_eb):
                    self._start_frame(out)
                    i = j_sb + 1
                elif j_eb != -1:
                    self._state = _State.OUTSIDE
                    self._expect_cr = True
                    i = j_eb + 1
                else:
                    break
        # Report noise per read so that a sender that never frames cannot grow a buffer.
        self._flush_junk(out)
        return out

    def _consume_inside(self, data: bytes, i: int, out: list[Event]) -> int:
        j_eb, j_sb = data.find(EB, i), data.find(SB, i)
        end = len(data) if j_eb == -1 else j_eb
        if j_sb != -1 and j_sb < end:
            # A new frame starts before this one ended: the sender restarted mid-message.
            if self._over_limit(data, i, j_sb, out):
                return j_sb
            self._buf += data[i:j_sb]
            out.append(Junk(bytes(self._buf), "frame cut short by a new start block"))
            self._start_frame(out)
            return j_sb + 1
        if self._over_limit(data, i, end, out):
            return end
        self._buf += data[i:end]
        if j_eb == -1:
            return len(data)
        self._finish_frame(out)
        return j_eb + 1

    def _over_limit(self, data: bytes, start: int, end: int, out: list[Event]) -> bool:
        """Whether ``data[start:end]`` would take the frame past the limit; if so the frame is reported
        :class:`Oversized` (with its head) and the rest of it discarded. The buffer never holds more than
        ``max_frame_bytes``: the bytes past the limit are never copied into it."""
        size = len(self._buf) + (end - start)
        if size <= self.max_frame_bytes:
            return False
        head = bytes(self._buf[:HEAD_BYTES])
        if len(head) < HEAD_BYTES:
            head += data[start : min(end, start + HEAD_BYTES - len(head))]
        out.append(Oversized(size, self.max_frame_bytes, head))
        self._buf.clear()
        self._state = _State.DISCARD
        return True

    def close(self) -> list[Event]:
        """End of stream: a partial frame and noise left over are reported as junk."""
        out: list[Event] = []
        if self._state is _State.INSIDE:
            out.append(Junk(bytes(self._buf), "connection closed inside a frame"))
        self._flush_junk(out)
        self._buf.clear()
        self._state = _State.OUTSIDE
        self._expect_cr = False
        return out


def encode_frame(payload: bytes | str, encoding: str = "utf-8") -> bytes:
    """``SB payload EB CR``. Rejects payloads that contain SB or EB (they would break framing)."""
    data = payload.encode(encoding) if isinstance(payload, str) else payload
    if SB in data or EB in data:
        raise ValueError("an HL7 message must not contain the MLLP block characters 0x0B or 0x1C")
    return SB + data + EB + CR


async def read_events(
    reader: asyncio.StreamReader,
    decoder: FrameDecoder | None = None,
    *,
    chunk_size: int = 65536,
) -> AsyncIterator[Event]:
    """Every decoder event from ``reader`` until EOF (then what ``close()`` reports)."""
    dec = decoder or FrameDecoder()
    while True:
        chunk = await reader.read(chunk_size)
        if not chunk:
            break
        for event in dec.feed(chunk):
            yield event
    for event in dec.close():
        yield event


async def read_frames(
    reader: asyncio.StreamReader,
    decoder: FrameDecoder | None = None,
    *,
    on_problem: Callable[[Junk | Oversized], None] | None = None,
    chunk_size: int = 65536,
) -> AsyncIterator[bytes]:
    """Payloads of complete frames; junk and oversized frames go to ``on_problem`` (default: logged)."""
    report = on_problem or _log_problem
    async for event in read_events(reader, decoder, chunk_size=chunk_size):
        if isinstance(event, Frame):
            yield event.payload
        else:
            report(event)


def _log_problem(event: Junk | Oversized) -> None:
    if isinstance(event, Oversized):
        log.warning("MLLP: %s (%d bytes seen)", event.reason, event.size)
    elif event.is_whitespace:
        log.debug("MLLP: %d whitespace bytes outside a frame skipped", len(event.data))
    else:
        log.warning("MLLP: %s: %d bytes skipped, starting %r", event.reason, len(event.data), event.data[:32])


async def write_frame(writer: asyncio.StreamWriter, payload: bytes | str, encoding: str = "utf-8") -> None:
    """Frame ``payload`` and send it, waiting for the transport to drain."""
    writer.write(encode_frame(payload, encoding))
    await writer.drain()
