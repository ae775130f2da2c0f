"""Live-stream speech compliance monitor.

Audio flows one way through the packages of this folder::

    server (websockets ingest) -> asr (VAD + faster-whisper, committed text)
       -> text (normalize -> jieba -> Aho-Corasick lexicons + pinyin -> context rules)
       -> classifier (ONNX) -> alerts (dedup, routing) -> archive (evidence, hash chain)
"""

__version__ = "0.1.0"
