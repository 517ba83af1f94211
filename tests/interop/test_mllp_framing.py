"""MLLP framing: partial reads, several frames per read, noise, oversized frames, asyncio helpers."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.interop.hl7.mllp import (
    Frame,
    FrameDecoder,
    Junk,
    Oversized,
    encode_frame,
    read_events,
    read_frames,
    write_frame,
)

A = b"MSH|^~\\&|A\rPID|||1"
B = b"MSH|^~\\&|B\rOBX|1|NM|x||5"


def frames(events: list[Frame | Junk | Oversized]) -> list[bytes]:
    return [e.payload for e in events if isinstance(e, Frame)]


def test_encode_frame() -> None:
    assert encode_frame(A) == b"\x0b" + A + b"\x1c\r"
    assert encode_frame("é") == b"\x0b\xc3\xa9\x1c\r"
    assert encode_frame("é", "latin-1") == b"\x0b\xe9\x1c\r"
    with pytest.raises(ValueError, match="0x0B or 0x1C"):
        encode_frame(b"bad\x1cpayload")
    with pytest.raises(ValueError):
        encode_frame(b"\x0b")


def test_one_byte_at_a_time() -> None:
    dec = FrameDecoder()
    stream = encode_frame(A)
    events = []
    for k in range(len(stream)):
        got = dec.feed(stream[k : k + 1])
        # Nothing comes out before EB; the frame comes out at EB, not waiting for the CR.
        if k < len(stream) - 2:
            assert got == []
        events += got
    assert events == [Frame(A)]
    assert dec.idle


def test_several_frames_in_one_read() -> None:
    dec = FrameDecoder()
    assert dec.feed(encode_frame(A) + encode_frame(B) + encode_frame(A)) == [Frame(A), Frame(B), Frame(A)]


def test_junk_between_frames_is_reported_and_skipped() -> None:
    dec = FrameDecoder()
    events = dec.feed(b"hello" + encode_frame(A) + b"\r\n" + encode_frame(B) + b"tail")
    assert events == [
        Junk(b"hello", "bytes outside a frame"),
        Frame(A),
        Junk(b"\r\n", "bytes outside a frame"),
        Frame(B),
        Junk(b"tail", "bytes outside a frame"),
    ]
    assert events[2].is_whitespace and not events[0].is_whitespace  # type: ignore[union-attr]


def test_noise_without_frames_never_accumulates() -> None:
    dec = FrameDecoder(max_frame_bytes=16)
    for _ in range(3):
        assert dec.feed(b"x" * 1000) == [Junk(b"x" * 1000, "bytes outside a frame")]
    assert dec.feed(encode_frame(b"ok")) == [Frame(b"ok")]


def test_missing_cr_and_cr_in_next_read() -> None:
    dec = FrameDecoder()
    # EB without CR, then the next frame straight away: both delivered, no junk.
    assert dec.feed(b"\x0b" + A + b"\x1c" + encode_frame(B)) == [Frame(A), Frame(B)]
    # CR of a frame arriving in the next read is swallowed, not reported as junk.
    assert dec.feed(b"\x0b" + A + b"\x1c") == [Frame(A)]
    assert dec.feed(b"\r") == []
    assert dec.feed(b"\r") == [Junk(b"\r", "bytes outside a frame")]  # a second CR is noise


def test_oversized_frame_dropped_then_decoding_resumes() -> None:
    dec = FrameDecoder(max_frame_bytes=10)
    big = b"MSH|" + b"9" * 30
    events = dec.feed(encode_frame(big) + encode_frame(b"small"))
    assert len(events) == 2
    over = events[0]
    assert isinstance(over, Oversized)
    assert over.limit == 10 and over.size == len(big)  # 34 bytes seen in this read
    assert over.head == big
    assert "larger than 10 bytes" in over.reason
    assert events[1] == Frame(b"small")


def test_oversized_across_reads_keeps_memory_bounded() -> None:
    dec = FrameDecoder(max_frame_bytes=100)
    assert dec.feed(b"\x0b" + b"a" * 60) == []
    events = dec.feed(b"b" * 60)
    assert len(events) == 1 and isinstance(events[0], Oversized)
    assert events[0].size == 120  # 60 + 60 > 100
    assert dec.feed(b"c" * 10_000) == []  # discarded, not buffered
    assert dec._buf == bytearray()
    assert dec.feed(b"\x1c\r" + encode_frame(b"next")) == [Frame(b"next")]


def test_oversized_frame_interrupted_by_new_start_block() -> None:
    dec = FrameDecoder(max_frame_bytes=5)
    events = dec.feed(b"\x0b" + b"z" * 20)
    assert isinstance(events[0], Oversized)
    assert dec.feed(b"zz" + encode_frame(b"ok")) == [Frame(b"ok")]


def test_frame_cut_short_by_a_new_start_block() -> None:
    dec = FrameDecoder()
    events = dec.feed(b"\x0bMSH|partial" + encode_frame(B))
    assert events == [Junk(b"MSH|partial", "frame cut short by a new start block"), Frame(B)]


def test_close_reports_partial_frame_and_resets() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"\x0bMSH|half") == []
    assert not dec.idle
    assert dec.close() == [Junk(b"MSH|half", "connection closed inside a frame")]
    assert dec.idle
    assert dec.close() == []


def test_invalid_limit() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_bytes=0)


payloads = st.lists(
    st.binary(min_size=0, max_size=50).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b"")),
    min_size=1,
    max_size=8,
)


@given(payloads, st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_any_chunking_gives_the_same_frames(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(m) for m in messages)
    dec = FrameDecoder()
    events: list[Frame | Junk | Oversized] = []
    pos, k = 0, 0
    while pos < len(stream):
        size = cuts[k % len(cuts)]
        events += dec.feed(stream[pos : pos + size])
        pos += size
        k += 1
    events += dec.close()
    assert events == [Frame(m) for m in messages]


# ---------------------------------------------------------------- asyncio helpers


def test_read_frames_from_stream_reader() -> None:
    async def run() -> tuple[list[bytes], list[Junk | Oversized]]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"noise" + encode_frame(A)[:5])
        reader.feed_data(encode_frame(A)[5:] + encode_frame(b"x" * 50) + encode_frame(B) + b"\x0bhalf")
        reader.feed_eof()
        problems: list[Junk | Oversized] = []
        got = [
            p async for p in read_frames(reader, FrameDecoder(max_frame_bytes=40), on_problem=problems.append)
        ]
        return got, problems

    got, problems = asyncio.run(run())
    assert got == [A, B]
    assert [type(p).__name__ for p in problems] == ["Junk", "Oversized", "Junk"]
    assert problems[0] == Junk(b"noise", "bytes outside a frame")
    assert problems[2] == Junk(b"half", "connection closed inside a frame")


def test_read_events_yields_everything() -> None:
    async def run() -> list[Frame | Junk | Oversized]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"j" + encode_frame(A))
        reader.feed_eof()
        return [e async for e in read_events(reader, chunk_size=3)]

    assert asyncio.run(run()) == [Junk(b"j", "bytes outside a frame"), Frame(A)]


def test_write_then_read_over_loopback() -> None:
    async def run() -> list[bytes]:
        received: list[bytes] = []
        done = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            async for payload in read_frames(reader):
                received.append(payload)
                await write_frame(writer, b"ACK " + payload[:5])
            writer.close()
            done.set()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        acks = []
        client_decoder = FrameDecoder()  # one decoder per connection keeps partial reads
        for payload in (A, B):
            await write_frame(writer, payload)
            async for ack in read_frames(reader, client_decoder):
                acks.append(ack)
                break
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(done.wait(), 5)
        server.close()
        await server.wait_closed()
        assert received == [A, B]
        return acks

    assert asyncio.run(run()) == [b"ACK MSH|^", b"ACK MSH|^"]


def test_read_frames_logs_problems_by_default(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> list[bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"garbage" + encode_frame(A) + b"\r\n")
        reader.feed_eof()
        return [p async for p in read_frames(reader)]

    with caplog.at_level("DEBUG", logger="ketaclinic.interop.hl7.mllp"):
        assert asyncio.run(run()) == [A]
    levels = [(r.levelname, r.getMessage()[:40]) for r in caplog.records]
    assert levels == [
        ("WARNING", "MLLP: bytes outside a frame: 7 bytes ski"),
        ("DEBUG", "MLLP: 2 whitespace bytes outside a frame"),
    ]
