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
fallback re-decoding), the beam width is fixed (``MONITOR_ASR_BEAM_SIZE``), and
lexicon rescoring (``monitor/asr/rescore.py``) scores at most ``MAX_CANDIDATES``
rewrites of an utterance that passed the gate, each in one forced-decoding pass on
the encoder output the first pass already computed.

The window is decoded with CTranslate2's Whisper directly (faster-whisper's feature
extractor, prompt and tokenizer; the same options its ``transcribe`` passes for one
30-second window without timestamps), because rescoring needs the encoder output.
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
from monitor.asr.rescore import LexiconRescorer, Rewrite
from monitor.asr.vad import SpeechSegment
from monitor.config import Settings
from monitor.errors import LexiconError, ModelError

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
MAX_INITIAL_TIMESTAMP_INDEX = 50
"""faster-whisper's default ``max_initial_timestamp`` of 1 s, in 20 ms timestamp steps."""
WHISPER_ENCODER_FRAMES = 1500
"""Encoder output positions of one 30-second window (20 ms each)."""
WHISPER_WINDOW_S = 30.0
"""Whisper's trained input window."""
WINDOW_TAIL_S = 1.0
"""Padding (log-mel of silence) kept after an utterance in a shortened encoder window."""


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

    ``encoder_output`` is the window's encoding, kept for :meth:`Transcriber.score_texts`.
    """

    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    encoder_output: object = None
    content_frames: int = 0
    tokens: tuple[int, ...] = ()
    """The first pass's text tokens (no special tokens)."""
    step_logits: tuple[object, ...] = ()
    """Per decoding step, the logits over the vocabulary (kept only when rescoring may use them)."""


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
    first pass as gated.
    """

    def __init__(
        self,
        model: object,
        *,
        model_version: str,
        beam_size: int = 1,
        bias: RoomBias | None = None,
        gate: GateConfig = DEFAULT_GATE,
        rescorer: LexiconRescorer | None = None,
        window_s: float = WHISPER_WINDOW_S,
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.model_version = model_version
        self.beam_size = beam_size
        self.bias = bias or RoomBias(None, BiasMode.BASE)
        self.gate = gate
        self.rescorer = rescorer
        self.window_s = window_s  # shortest encoder window; see encoder_frames()
        self._simplify = _Simplifier()
        self._tokenizer = Tokenizer(
            model.hf_tokenizer,  # type: ignore[attr-defined]
            model.model.is_multilingual,  # type: ignore[attr-defined]
            task="transcribe",
            language=LANGUAGE,
        )
        self._suppress_tokens = list(get_suppressed_tokens(self._tokenizer, [-1]))  # type: ignore[arg-type]
        self._prompts: dict[tuple[str | None, str | None], list[int]] = {}
        self._prompt_lock = threading.Lock()

    def _prompt_tokens(self, prompt: str | None, hotwords: str | None) -> list[int]:
        """``<|startofprev|>`` prompt/hotwords, then sot, language, task, no-timestamps."""
        key = (prompt, hotwords)
        with self._prompt_lock:
            if key not in self._prompts:
                previous = self._tokenizer.encode(" " + prompt.strip()) if prompt else []
                self._prompts[key] = self.model.get_prompt(  # type: ignore[attr-defined]
                    self._tokenizer, previous, without_timestamps=True, hotwords=hotwords
                )
            return self._prompts[key]

    def encoder_frames(self, content_frames: int) -> int:
        """Mel frames (10 ms) the encoder sees for ``content_frames`` of audio: Whisper's 30 s, or
        with a shorter ``window_s`` the utterance plus :data:`WINDOW_TAIL_S` of padding, at least
        ``window_s`` (the encoder's cost grows faster than linearly with its window)."""
        full = int(WHISPER_WINDOW_S * 100)
        if self.window_s >= WHISPER_WINDOW_S:
            return full
        wanted = max(int(self.window_s * 100), content_frames + int(WINDOW_TAIL_S * 100))
        return min(full, wanted + wanted % 2)  # even: the encoder halves it

    def decode(self, audio: np.ndarray, *, room_category: str | None = None) -> RawDecode:
        """Run the decoder on float32 16 kHz ``audio`` (at most 30 s) without gating.

        With a rescorer and greedy search, the per-step logits are kept for
        :meth:`first_token_logprobs`.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_compression_ratio

        duration_s = audio.size / SAMPLE_RATE
        prompt = self._prompt_tokens(*self.bias.prompt(room_category))
        budget = WHISPER_MAX_LENGTH - len(prompt)
        max_new_tokens = max(1, min(budget, MIN_TOKENS + math.ceil(duration_s * MAX_TOKENS_PER_S)))
        features = self.model.feature_extractor(audio)  # type: ignore[attr-defined]
        content_frames = max(features.shape[-1] - 1, 0)
        window = self.encoder_frames(content_frames)
        encoder_output = self.model.encode(  # type: ignore[attr-defined]
            pad_or_trim(features[:, :content_frames], window)
        )
        keep_logits = self.rescorer is not None and self.beam_size == 1
        result = self.model.model.generate(  # type: ignore[attr-defined]
            encoder_output,
            [prompt],
            beam_size=self.beam_size,
            max_length=len(prompt) + max_new_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress_tokens,
            max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
            return_logits_vocab=keep_logits,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        text = self._tokenizer.decode(tokens).strip()
        if not text:
            return RawDecode(text="", avg_logprob=-10.0, no_speech_prob=1.0, compression_ratio=0.0)
        # CTranslate2 returns the cumulative log-probability over the length (length penalty 1);
        # faster-whisper's average counts the end-of-text token too.
        avg_logprob = result.scores[0] * len(result.sequences_ids[0]) / (len(result.sequences_ids[0]) + 1)
        return RawDecode(
            text=self._simplify(text),
            avg_logprob=float(avg_logprob),
            no_speech_prob=float(result.no_speech_prob),
            compression_ratio=float(get_compression_ratio(text)),
            encoder_output=encoder_output,
            content_frames=content_frames,
            tokens=tuple(tokens),
            step_logits=tuple(result.logits[0]) if keep_logits else (),
        )

    def first_token_logprobs(self, raw: RawDecode, texts: list[str]) -> list[float | None]:
        """For each text, the log-probability the first pass gave, at the step where the text
        first departs from the first pass's tokens, to the text's token there.

        ``None`` for every text when the first pass kept no logits or its tokens do not
        spell ``texts``' common prefix (a traditional-script first pass that was simplified).
        """
        if not raw.step_logits:
            return [None] * len(texts)
        out: list[float | None] = []
        for text in texts:
            tokens = self._tokenizer.encode(text)
            step = 0
            while step < min(len(tokens), len(raw.tokens)) and tokens[step] == raw.tokens[step]:
                step += 1
            if step >= len(tokens) or step >= len(raw.step_logits):
                out.append(None)
                continue
            logits = np.asarray(raw.step_logits[step], dtype=np.float64).reshape(-1)
            peak = logits.max()
            out.append(float(logits[tokens[step]] - peak - np.log(np.exp(logits - peak).sum())))
        return out

    def score_texts(self, raw: RawDecode, texts: list[str], *, room_category: str | None = None) -> list[float]:
        """Log-probability (nats) of each of ``texts`` as the whole transcript of ``raw``'s audio.

        Forced decoding on the encoder output ``raw`` kept (CTranslate2 ``Whisper.align``),
        one decoder pass per text, no search. Scores of different texts for the same audio
        compare; their difference is what :mod:`monitor.asr.rescore` thresholds.
        """
        if raw.encoder_output is None:
            raise ValueError("score_texts needs a RawDecode from decode() (it holds the encoder output)")
        # align() appends <|notimestamps|> to the start sequence itself.
        start = self._prompt_tokens(*self.bias.prompt(room_category))[:-1]
        frames = max(1, min(raw.content_frames // 2, WHISPER_ENCODER_FRAMES))
        scores: list[float] = []
        for text in texts:
            tokens = self._tokenizer.encode(text) or [self._tokenizer.eot]
            # One text per call: on CPU a batch costs more than the same texts one by one (the
            # cross-attention keys are recomputed per batch item; 46 ms for one, 245 for four).
            [result] = self.model.model.align(  # type: ignore[attr-defined]
                raw.encoder_output, start, [tokens], [frames]
            )
            probabilities = np.asarray(result.text_token_probs, dtype=np.float64)
            scores.append(float(np.log(np.maximum(probabilities, 1e-30)).sum()))
        return scores

    def transcribe(self, segment: SpeechSegment, *, room_category: str | None = None) -> Transcript | None:
        """The gated, rescored transcript of one utterance, or ``None`` when it holds no speech.

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
        heard: str | None = None
        rewrites: tuple[Rewrite, ...] = ()
        if self.rescorer is not None:
            # The first-token check reads the first pass's logits: valid only while its tokens
            # spell the text being rewritten (not after simplification or the gate changed it).
            same_text = self._tokenizer.encode(text) == list(raw.tokens)
            rescored = self.rescorer.rescore(
                text,
                lambda texts: self.score_texts(raw, texts, room_category=room_category),
                first_token=(lambda texts: self.first_token_logprobs(raw, texts)) if same_text else None,
            )
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


def resolve_model_dir(settings: Settings) -> tuple[Path, bool]:
    """``(folder, is_embedded_default)`` of the model ``settings`` select."""
    if settings.asr_model is not None:
        return Path(settings.asr_model), False
    return settings.models_dir / DEFAULT_MODEL_DIRNAME, True


_load_lock = threading.Lock()


def _load_rescorer(lexicon_dir: Path) -> LexiconRescorer | None:
    """Every written form of every lexicon term, indexed by sound (None without lexicons)."""
    from monitor.text.lexicon import load_lexicons

    try:
        lexicon = load_lexicons(lexicon_dir)
    except LexiconError as exc:  # the text engine reports it when it loads the same folder
        log.warning("ASR rescoring off: %s", exc)
        return None
    return LexiconRescorer(surface for rule in lexicon for surface in rule.entry.surfaces)


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
    rescore: bool,
    window_s: float = WHISPER_WINDOW_S,
) -> Transcriber:
    from faster_whisper import WhisperModel

    path = Path(model_dir)
    if embedded:
        verify_model_dir(path)
    elif not path.is_dir():
        raise ModelError(f"{path}: MONITOR_ASR_MODEL folder does not exist")
    version = _model_version(path, compute_type, embedded=embedded, window_s=window_s)
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
        rescorer=_load_rescorer(Path(lexicon_dir)) if rescore else None,
        window_s=window_s,
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
            settings.asr_rescore,
            settings.asr_window_s,
        )
