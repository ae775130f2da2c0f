"""Utterance audio to committed, gated, simplified-Chinese text (faster-whisper).

One :class:`Transcriber` per process, from :func:`load_transcriber` (cached, warmed
up, safe to call from several threads at once)::

    transcriber = load_transcriber(settings)
    transcript = transcriber.transcribe(segment, room_category="jewelry")
    if transcript is not None:          # None: music, noise, silence or a phantom phrase
        session.feed(Utterance(transcript.text, transcript.start, transcript.end))

Cost is bounded per second of audio whatever comes in: segments are at most
``MAX_UTTERANCE_S`` long (the segmenter), the decoder may emit at most
``MAX_TOKENS_PER_S`` tokens per second of audio, there is one temperature (no
fallback re-decoding), and the beam width is fixed (``MONITOR_ASR_BEAM_SIZE``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from monitor.asr.audio import SAMPLE_RATE
from monitor.asr.bias import BiasMode, RoomBias
from monitor.asr.gate import DEFAULT_GATE, GateConfig, gate_text
from monitor.asr.model_setup import DEFAULT_MODEL_DIRNAME, read_checksums, verify_model_dir
from monitor.asr.vad import SpeechSegment
from monitor.config import Settings
from monitor.errors import ModelError

log = logging.getLogger(__name__)

LANGUAGE = "zh"
MAX_TOKENS_PER_S = 14.0
"""Decoder token budget per second of audio (fast Mandarin is ~7 chars/s, ~1.5 tokens/char)."""
MIN_TOKENS = 16
WHISPER_MAX_LENGTH = 448
"""Whisper's decoder context (prompt + output tokens)."""
TEMPERATURES = (0.0,)
"""Single temperature: fallback re-decoding multiplies the cost of exactly the audio (music,
noise) that should cost least, and its sampled text is where hallucinations come from."""


@dataclass(frozen=True)
class Transcript:
    """What was said in one utterance.

    ``text`` is simplified Chinese and passed the hallucination gate; ``start``/``end``
    are the segment's stream seconds; ``avg_logprob``/``no_speech_prob`` are the
    decoder's signals (for display and tuning).
    """

    text: str
    start: float
    end: float
    avg_logprob: float
    no_speech_prob: float


@dataclass(frozen=True)
class RawDecode:
    """The decoder's output before the gate (for benchmarks and tests)."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


class _Simplifier:
    """OpenCC traditional-to-simplified conversion, serialised (the binding is not documented thread-safe)."""

    def __init__(self) -> None:
        import opencc

        self._converter = opencc.OpenCC("t2s")
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        with self._lock:
            return str(self._converter.convert(text))


class Transcriber:
    """A loaded Whisper model with the project's decoding policy; see the module docstring.

    Build with :func:`load_transcriber`. ``model_version`` names the model actually
    used (e.g. ``whisper-base-ct2-int8@905e5bf8336b``) and is carried by alerts.
    """

    def __init__(
        self,
        model: object,
        *,
        model_version: str,
        beam_size: int = 1,
        bias: RoomBias | None = None,
        gate: GateConfig = DEFAULT_GATE,
    ) -> None:
        self.model = model
        self.model_version = model_version
        self.beam_size = beam_size
        self.bias = bias or RoomBias(None, BiasMode.BASE)
        self.gate = gate
        self._simplify = _Simplifier()
        self._prompt_tokens: dict[tuple[str | None, str | None], int] = {}
        self._prompt_lock = threading.Lock()

    def _prompt_length(self, prompt: str | None, hotwords: str | None) -> int:
        key = (prompt, hotwords)
        with self._prompt_lock:
            if key not in self._prompt_tokens:
                tokenizer = self.model.hf_tokenizer  # type: ignore[attr-defined]
                count = 4  # <|startofprev|>, sot, language, task
                for text in (prompt, hotwords):
                    if text:
                        count += len(tokenizer.encode(" " + text.strip(), add_special_tokens=False).ids)
                self._prompt_tokens[key] = count
            return self._prompt_tokens[key]

    def decode(self, audio: np.ndarray, *, room_category: str | None = None) -> RawDecode:
        """Run the decoder on float32 16 kHz ``audio`` (at most 30 s) without gating."""
        duration_s = audio.size / SAMPLE_RATE
        prompt, hotwords = self.bias.prompt(room_category)
        budget = WHISPER_MAX_LENGTH - self._prompt_length(prompt, hotwords) - 2
        max_new_tokens = max(1, min(budget, MIN_TOKENS + math.ceil(duration_s * MAX_TOKENS_PER_S)))
        segments, _info = self.model.transcribe(  # type: ignore[attr-defined]
            audio,
            language=LANGUAGE,
            task="transcribe",
            beam_size=self.beam_size,
            best_of=1,
            temperature=list(TEMPERATURES),
            compression_ratio_threshold=None,
            log_prob_threshold=None,
            no_speech_threshold=None,  # gated below, with the signals kept
            condition_on_previous_text=False,
            initial_prompt=prompt,
            hotwords=hotwords,
            without_timestamps=True,
            vad_filter=False,
            max_new_tokens=max_new_tokens,
        )
        decoded = list(segments)
        if not decoded:
            return RawDecode(text="", avg_logprob=-10.0, no_speech_prob=1.0, compression_ratio=0.0)
        text = "".join(s.text for s in decoded).strip()
        weights = [max(len(s.tokens), 1) for s in decoded]
        avg_logprob = float(np.average([s.avg_logprob for s in decoded], weights=weights))
        return RawDecode(
            text=self._simplify(text),
            avg_logprob=avg_logprob,
            no_speech_prob=float(decoded[0].no_speech_prob),
            compression_ratio=float(max(s.compression_ratio for s in decoded)),
        )

    def transcribe(self, segment: SpeechSegment, *, room_category: str | None = None) -> Transcript | None:
        """The gated transcript of one utterance, or ``None`` when it holds no speech.

        ``room_category`` (e.g. ``"jewelry"``) selects the lexicon terms used for
        biasing when ``MONITOR_ASR_BIAS`` asks for them. Thread-safe.
        """
        if segment.audio.size == 0:
            return None
        raw = self.decode(segment.audio, room_category=room_category)
        text = gate_text(
            raw.text,
            duration_s=segment.audio.size / SAMPLE_RATE,
            avg_logprob=raw.avg_logprob,
            no_speech_prob=raw.no_speech_prob,
            config=self.gate,
        )
        if text is None:
            log.debug("gated out %.2f-%.2f s: %r (%s)", segment.start, segment.end, raw.text, raw)
            return None
        return Transcript(
            text=text,
            start=segment.start,
            end=segment.end,
            avg_logprob=raw.avg_logprob,
            no_speech_prob=raw.no_speech_prob,
        )


def _model_version(model_dir: Path, compute_type: str, *, embedded: bool) -> str:
    if embedded:
        return f"whisper-base-ct2-{compute_type}@{read_checksums()['model.bin'][:12]}"
    config = model_dir / "config.json"
    try:
        digest = hashlib.sha256(config.read_bytes()).hexdigest()[:12]
    except OSError as exc:
        raise ModelError(f"{config}: not a CTranslate2 Whisper model folder (no config.json)") from exc
    return f"{model_dir.name}-ct2-{compute_type}@{digest}"


def resolve_model_dir(settings: Settings) -> tuple[Path, bool]:
    """``(folder, is_embedded_default)`` of the model ``settings`` select."""
    if settings.asr_model is not None:
        return Path(settings.asr_model), False
    return settings.models_dir / DEFAULT_MODEL_DIRNAME, True


_load_lock = threading.Lock()


@lru_cache(maxsize=2)
def _load(
    model_dir: str,
    embedded: bool,
    device: str,
    compute_type: str,
    threads: int,
    workers: int,
    beam_size: int,
    bias_mode: str,
    lexicon_dir: str,
) -> Transcriber:
    from faster_whisper import WhisperModel

    path = Path(model_dir)
    if embedded:
        verify_model_dir(path)
    elif not path.is_dir():
        raise ModelError(f"{path}: MONITOR_ASR_MODEL folder does not exist")
    version = _model_version(path, compute_type, embedded=embedded)
    try:
        model = WhisperModel(
            model_dir,
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=workers,
            local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(
            f"{path}: cannot load Whisper model on {device}/{compute_type}: {first_line}"
        ) from exc
    transcriber = Transcriber(
        model,
        model_version=version,
        beam_size=beam_size,
        bias=RoomBias(Path(lexicon_dir), BiasMode(bias_mode)),
    )
    # Warm-up: the first decode allocates buffers and picks kernels (~1 s); pay it at load.
    rng = np.random.default_rng(0)
    transcriber.decode((0.001 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32))
    log.info("ASR model %s loaded from %s (%s, %s)", version, path, device, compute_type)
    return transcriber


def load_transcriber(settings: Settings) -> Transcriber:
    """The process-wide transcriber for ``settings`` (loaded, verified and warmed up once).

    The embedded default is checked against its recorded SHA-256 sums first; a
    missing or altered file raises :class:`ModelError` naming it. Thread-safe:
    concurrent ``transcribe`` calls run on ``MONITOR_ASR_WORKERS`` CTranslate2 workers
    with ``MONITOR_ASR_THREADS`` threads each.
    """
    model_dir, embedded = resolve_model_dir(settings)
    with _load_lock:  # two threads asking at start-up must not load the model twice
        return _load(
            str(model_dir),
            embedded,
            settings.asr_device,
            settings.asr_compute_type,
            settings.asr_threads,
            settings.asr_workers,
            settings.asr_beam_size,
            settings.asr_bias,
            str(settings.lexicon_dir),
        )
