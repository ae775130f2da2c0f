"""Utterance audio to committed, gated, simplified-Chinese text (faster-whisper).

One :class:`Transcriber` per process, from :func:`load_transcriber` (cached, warmed
up, safe to call from several threads at once)::

    transcriber = load_transcriber(settings, lexicon=lexicon)   # the text engine's, loaded once
    transcript = transcriber.transcribe(segment, room_category="jewelry")
    if transcript is not None:          # None: music, noise, silence or a phantom phrase
        session.feed(Utterance(transcript.text, transcript.start, transcript.end))

Cost is bounded per second of audio whatever comes in: segments are at most
``MAX_UTTERANCE_S`` long (the segmenter), the decoder may emit at most
``MAX_TOKENS_PER_S`` tokens per second of audio, there is one temperature (no
fallback re-decoding), the beam width is fixed (``MONITOR_ASR_BEAM_SIZE``), and
lexicon rescoring (``monitor/asr/rescore.py``) scores at most ``MAX_CANDIDATES``
rewrites of an utterance that passed the gate, each in one forced-decoding pass on
the encoder output the first pass already computed.

The model is run through :class:`monitor.asr.decoder.WhisperDecoder` (encode once,
decode, forced scoring on the same encoder output); this module holds the policy: the
token budget, the prompt, the gate, rescoring and the script (OpenCC t2s).

The lexicon is loaded once by the caller and shared (``load_transcriber(settings,
lexicon=...)``); biasing and rescoring only read it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from monitor.asr.audio import SAMPLE_RATE
from monitor.asr.bias import BiasMode, RoomBias
from monitor.asr.decoder import (
    WHISPER_WINDOW_S,
    Features,
    Hypothesis,
    Prompt,
    UtteranceScorer,
    WhisperDecoder,
    compression_ratio,
    encoder_frames,
)
from monitor.asr.gate import DEFAULT_GATE, GateConfig, gate_text
from monitor.asr.model_setup import DEFAULT_MODEL_DIRNAME, read_checksums, verify_model_dir
from monitor.asr.rescore import LexiconRescorer, Rewrite
from monitor.asr.vad import SpeechSegment
from monitor.config import Settings
from monitor.errors import LexiconError, ModelError

if TYPE_CHECKING:
    from monitor.text.lexicon import Lexicon

log = logging.getLogger(__name__)

MAX_TOKENS_PER_S = 14.0
"""Decoder token budget per second of audio (fast Mandarin is ~7 chars/s, ~1.5 tokens/char)."""
MIN_TOKENS = 16
TEMPERATURES = (0.0,)
"""Single temperature: fallback re-decoding multiplies the cost of exactly the audio (music,
noise) that should cost least, and its sampled text is where hallucinations come from."""
MAX_CACHED_TRANSCRIBERS = 4
"""Transcribers kept per process (one per distinct settings and lexicon; normally one)."""


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
    heard: str | None = None
    """The first-pass text when lexicon rescoring rewrote part of it (else ``None``)."""
    rewrites: tuple[Rewrite, ...] = ()
    """What rescoring rewrote, with offsets into ``heard``."""


@dataclass(frozen=True)
class RawDecode:
    """The decoder's output before the gate (for benchmarks and tests).

    ``text`` is simplified. ``features``, ``prompt`` and ``first_pass`` are kept for
    :meth:`Transcriber.scorer` (``None`` when the decoder wrote nothing).
    """

    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    features: Features | None = None
    prompt: Prompt | None = None
    first_pass: Hypothesis | None = None


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
    ``rescorer`` (lexicon rescoring) is optional: without one, transcripts are the
    first pass as gated. ``window_s`` is the shortest encoder window
    (:func:`monitor.asr.decoder.encoder_frames`).
    """

    def __init__(
        self,
        decoder: WhisperDecoder,
        *,
        model_version: str,
        beam_size: int = 1,
        bias: RoomBias | None = None,
        gate: GateConfig = DEFAULT_GATE,
        rescorer: LexiconRescorer | None = None,
        window_s: float = WHISPER_WINDOW_S,
    ) -> None:
        self.decoder = decoder
        self.model_version = model_version
        self.beam_size = beam_size
        self.bias = bias or RoomBias(None, BiasMode.BASE)
        self.gate = gate
        self.rescorer = rescorer
        self.window_s = window_s
        self._simplify = _Simplifier()

    def encoder_frames(self, content_frames: int) -> int:
        """Mel frames (10 ms) the encoder sees for ``content_frames`` of audio with this window."""
        return encoder_frames(content_frames, self.window_s)

    def _raw(self, hypothesis: Hypothesis, features: Features, prompt: Prompt) -> RawDecode:
        if not hypothesis.text:
            return RawDecode(text="", avg_logprob=-10.0, no_speech_prob=1.0, compression_ratio=0.0)
        return RawDecode(
            text=self._simplify(hypothesis.text),
            avg_logprob=hypothesis.avg_logprob,
            no_speech_prob=hypothesis.no_speech_prob,
            compression_ratio=compression_ratio(hypothesis.text),
            features=features,
            prompt=prompt,
            first_pass=hypothesis,
        )

    def _token_budget(self, audio: np.ndarray) -> int:
        return MIN_TOKENS + math.ceil(audio.size / SAMPLE_RATE * MAX_TOKENS_PER_S)

    def transcribe_batch(
        self, segments: list[SpeechSegment], room_categories: list[str | None]
    ) -> list[Transcript | None]:
        """:meth:`transcribe` of several utterances (of any rooms) with one batched decoder search:
        what a cluster worker does with the jobs it took at once. Same transcripts as one by one."""
        if len(segments) != len(room_categories):
            raise ValueError(f"{len(segments)} segments but {len(room_categories)} room categories")
        live = [i for i, segment in enumerate(segments) if segment.audio.size]
        prompts = {i: self.decoder.prompt(*self.bias.prompt(room_categories[i])) for i in live}
        features = {i: self.decoder.encode(segments[i].audio, window_s=self.window_s) for i in live}
        hypotheses = self.decoder.decode_batch(
            [(features[i], prompts[i], self._token_budget(segments[i].audio)) for i in live],
            beam_size=self.beam_size,
            keep_step_logits=self.rescorer is not None and self.beam_size == 1,
        )
        out: list[Transcript | None] = [None] * len(segments)
        for i, hypothesis in zip(live, hypotheses, strict=True):
            out[i] = self._finish(segments[i], self._raw(hypothesis, features[i], prompts[i]))
        return out

    def decode(self, audio: np.ndarray, *, room_category: str | None = None) -> RawDecode:
        """Run the decoder on float32 16 kHz ``audio`` (at most 30 s) without gating.

        With a rescorer and greedy search, the per-step logits are kept for the
        first-token check of :meth:`scorer`.
        """
        prompt = self.decoder.prompt(*self.bias.prompt(room_category))
        features = self.decoder.encode(audio, window_s=self.window_s)
        hypothesis = self.decoder.decode(
            features,
            prompt,
            beam_size=self.beam_size,
            max_new_tokens=self._token_budget(audio),
            keep_step_logits=self.rescorer is not None and self.beam_size == 1,
        )
        return self._raw(hypothesis, features, prompt)

    def scorer(self, raw: RawDecode, *, transcript: str | None = None) -> UtteranceScorer:
        """The decoder's scores of texts on ``raw``'s audio, with the prompt it was decoded with.

        ``transcript`` (default ``raw.text``) is the text being rescored: the first-token check
        is used only while the first pass's tokens spell it.
        """
        if raw.features is None or raw.prompt is None or raw.first_pass is None:
            raise ValueError("scorer needs a RawDecode with text from decode() (it holds the encoder output)")
        return self.decoder.scorer(
            raw.features,
            raw.prompt,
            transcript=raw.text if transcript is None else transcript,
            first_pass=raw.first_pass,
        )

    def transcribe(self, segment: SpeechSegment, *, room_category: str | None = None) -> Transcript | None:
        """The gated, rescored transcript of one utterance, or ``None`` when it holds no speech.

        ``room_category`` (e.g. ``"jewelry"``) selects the lexicon terms used for
        biasing when ``MONITOR_ASR_BIAS`` asks for them. Thread-safe.
        """
        if segment.audio.size == 0:
            return None
        return self._finish(segment, self.decode(segment.audio, room_category=room_category))

    def _finish(self, segment: SpeechSegment, raw: RawDecode) -> Transcript | None:
        """Gate and rescore one decoded utterance."""
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
        heard: str | None = None
        rewrites: tuple[Rewrite, ...] = ()
        if self.rescorer is not None:
            rescored = self.rescorer.rescore(text, self.scorer(raw, transcript=text))
            if rescored.rewrites:
                heard, rewrites = text, rescored.rewrites
                log.debug("rescored %.2f-%.2f s: %r -> %r", segment.start, segment.end, text, rescored.text)
                text = rescored.text
        return Transcript(
            text=text,
            start=segment.start,
            end=segment.end,
            avg_logprob=raw.avg_logprob,
            no_speech_prob=raw.no_speech_prob,
            heard=heard,
            rewrites=rewrites,
        )


def _model_version(model_dir: Path, compute_type: str, *, embedded: bool, window_s: float = WHISPER_WINDOW_S) -> str:
    version = _weights_version(model_dir, compute_type, embedded=embedded)
    # a shorter encoder window changes what is heard: it is part of the version alerts carry
    return version if window_s >= WHISPER_WINDOW_S else f"{version}+window{window_s:g}s"


def _weights_version(model_dir: Path, compute_type: str, *, embedded: bool) -> str:
    if embedded:
        return f"whisper-base-ct2-{compute_type}@{read_checksums()['model.bin'][:12]}"
    config = model_dir / "config.json"
    try:
        digest = hashlib.sha256(config.read_bytes()).hexdigest()[:12]
    except OSError as exc:
        raise ModelError(f"{config}: not a CTranslate2 Whisper model folder (no config.json)") from exc
    return f"{model_dir.name}-ct2-{compute_type}@{digest}"


def asr_model_version(settings: Settings) -> str:
    """The ``model_version`` of the transcriber ``settings`` select, without loading the model
    (a cluster gateway names the model its workers run)."""
    model_dir, embedded = resolve_model_dir(settings)
    return _model_version(model_dir, settings.asr_compute_type, embedded=embedded, window_s=settings.asr_window_s)


def resolve_model_dir(settings: Settings) -> tuple[Path, bool]:
    """``(folder, is_embedded_default)`` of the model ``settings`` select."""
    if settings.asr_model is not None:
        return Path(settings.asr_model), False
    return settings.models_dir / DEFAULT_MODEL_DIRNAME, True


_load_lock = threading.Lock()
_transcribers: OrderedDict[tuple[object, ...], Transcriber] = OrderedDict()


@lru_cache(maxsize=2)
def _load_decoder(
    model_dir: str, embedded: bool, device: str, compute_type: str, threads: int, workers: int
) -> WhisperDecoder:
    path = Path(model_dir)
    if embedded:
        verify_model_dir(path)
    elif not path.is_dir():
        raise ModelError(f"{path}: MONITOR_ASR_MODEL folder does not exist")
    return WhisperDecoder.load(model_dir, device=device, compute_type=compute_type, threads=threads, workers=workers)


@lru_cache(maxsize=2)
def _load_lexicon(lexicon_dir: str) -> Lexicon | None:
    """The lexicon of ``lexicon_dir``, parsed once per process; ``None`` when it is malformed
    (the text engine reports that when it loads the same folder)."""
    from monitor.text.lexicon import load_lexicons

    try:
        return load_lexicons(Path(lexicon_dir))
    except LexiconError as exc:
        log.warning("ASR without lexicon terms (no rescoring, no biasing terms): %s", exc)
        return None


def load_transcriber(settings: Settings, lexicon: Lexicon | None = None) -> Transcriber:
    """The process-wide transcriber for ``settings`` (loaded, verified and warmed up once).

    ``lexicon`` is the already loaded lexicon to bias and rescore with (the one the text
    engine uses); without one, ``settings.lexicon_dir`` is loaded here (once per process,
    and only when rescoring or term biasing is on). The model is shared by every transcriber
    of the same model settings; a transcriber is cached per settings and lexicon version.

    The embedded default is checked against its recorded SHA-256 sums first; a
    missing or altered file raises :class:`ModelError` naming it. Thread-safe:
    concurrent ``transcribe`` calls run on ``MONITOR_ASR_WORKERS`` CTranslate2 workers
    with ``MONITOR_ASR_THREADS`` threads each.
    """
    model_dir, embedded = resolve_model_dir(settings)
    bias_mode = BiasMode(settings.asr_bias)
    with _load_lock:  # two threads asking at start-up must not load the model twice
        decoder = _load_decoder(
            str(model_dir),
            embedded,
            settings.asr_device,
            settings.asr_compute_type,
            settings.asr_threads,
            settings.asr_workers,
        )
        if lexicon is None and (settings.asr_rescore or bias_mode.uses_lexicon):
            lexicon = _load_lexicon(str(settings.lexicon_dir))
        key = (
            decoder,
            settings.asr_beam_size,
            bias_mode,
            settings.asr_rescore,
            settings.asr_window_s,
            None if lexicon is None else lexicon.version,
        )
        if key in _transcribers:
            _transcribers.move_to_end(key)
            return _transcribers[key]
        version = _model_version(
            model_dir, settings.asr_compute_type, embedded=embedded, window_s=settings.asr_window_s
        )
        transcriber = Transcriber(
            decoder,
            model_version=version,
            beam_size=settings.asr_beam_size,
            bias=RoomBias(lexicon, bias_mode),
            rescorer=LexiconRescorer.from_lexicon(lexicon) if settings.asr_rescore and lexicon is not None else None,
            window_s=settings.asr_window_s,
        )
        # Warm-up: the first decode allocates buffers and picks kernels (~1 s); pay it at load.
        rng = np.random.default_rng(0)
        transcriber.decode((0.001 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32))
        log.info(
            "ASR model %s loaded from %s (%s, %s)", version, model_dir, settings.asr_device, settings.asr_compute_type
        )
        _transcribers[key] = transcriber
        while len(_transcribers) > MAX_CACHED_TRANSCRIBERS:
            _transcribers.popitem(last=False)
        return transcriber
