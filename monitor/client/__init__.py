"""Python SDK for a running monitor server: stream a room's audio in, get transcripts and alerts out.

Push a file (or a URL: HTTP, HLS, RTMP, anything PyAV opens) at real time and print the
anchor's reminders as they arrive; a dropped connection is resumed on its own::

    import asyncio

    from monitor.client import IngestClient


    async def main() -> None:
        client = IngestClient("ws://127.0.0.1:8765", token="tok-ingest")
        async with client.push_file("room-7", "show.mp4", speed=1.0, context={"category": "jewelry"}) as events:
            async for event in events:
                if event.type == "alert":
                    print(f"{event.start:.1f}s {event.category}: {event.matched} -> {event.reminder}")
                elif event.type == "transcript":
                    print(f"{event.start:.1f}s heard: {event.text}")


    asyncio.run(main())

Live audio of your own: ``client.stream("room-7", pcm_chunks, sample_rate=48000)`` with any
async iterator of PCM s16le mono bytes. Modules: :mod:`~monitor.client.ingest` (the stream,
resume and back-pressure), :mod:`~monitor.client.events` (what it yields),
:mod:`~monitor.client.audio` (sources), :mod:`~monitor.client.errors`,
:mod:`~monitor.client.command` (``monitor push``). docs/CLIENT.md has the details.
"""

from monitor.client.audio import file_audio, float_to_pcm16
from monitor.client.errors import ClientError, HandshakeRefused, ResumeFailed, ServerUnreachable, StreamRefused
from monitor.client.events import (
    Alert,
    AudioGap,
    Event,
    Ready,
    Reconnecting,
    ServerError,
    Stopped,
    Transcript,
)
from monitor.client.ingest import IngestClient, IngestStream

__all__ = [
    "Alert",
    "AudioGap",
    "ClientError",
    "Event",
    "HandshakeRefused",
    "IngestClient",
    "IngestStream",
    "Ready",
    "Reconnecting",
    "ResumeFailed",
    "ServerError",
    "ServerUnreachable",
    "Stopped",
    "StreamRefused",
    "Transcript",
    "file_audio",
    "float_to_pcm16",
]
