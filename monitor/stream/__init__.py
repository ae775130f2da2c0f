"""One room's stream, I/O-free: audio -> utterances -> transcripts -> alerts (deduplicated).

``pipeline.RoomPipeline`` is shared by ``monitor scan`` (a file, inline) and ``monitor serve``
(a live room, utterances on worker threads); ``dedup.AlertDedup`` is the alerts stage's
memory; ``ring.AudioRing`` holds recent audio for evidence clips.
"""

from monitor.stream.pipeline import EvidenceClip, RoomPipeline, StreamOptions, UtteranceResult

__all__ = ["EvidenceClip", "RoomPipeline", "StreamOptions", "UtteranceResult"]
