"""The Whisper decoder behind one small interface: the only module that knows faster-whisper
and CTranslate2.

:class:`WhisperDecoder` wraps a faster-whisper ``WhisperModel`` (its feature extractor,
Hugging Face tokenizer and prompt builder) and the CTranslate2 ``Whisper`` inside it
(``encode``, ``generate``, ``align``), and speaks in the speech stage's terms::

    decoder = WhisperDecoder.load(model_dir, device="cpu", compute_type="int8", threads=1, workers=2)
    features = decoder.encode(audio, window_s=15.0)           # float32 mono 16 kHz, at most 30 s
    prompt = decoder.prompt(BASE_PROMPT, None)                 # cached per (prompt, hotwords)
    hypothesis = decoder.decode(features, prompt, beam_size=1, max_new_tokens=226, keep_step_logits=True)
    scorer = decoder.scorer(features, prompt, transcript=text, first_pass=hypothesis)
    scorer.score([text, rewritten])                            # nats, forced decoding on ``features``

The decoding policy (token budget per second, which prompt, gating, rescoring) is the
transcriber's; this module only runs the model. Every call is thread-safe: CTranslate2
runs concurrent calls on its ``workers``.

One utterance per call today. CTranslate2's ``encode`` and ``generate`` take a batch
(encoder inputs of equal length, one prompt per item), so a batched decode across rooms'
utterances is an ``encode_batch`` / ``decode_batch`` pair here: utterances padded to the
same ``window_frames`` encode together (one ``StorageView`` with a batch axis) and decode
in one ``generate`` call, each item read back by :meth:`WhisperDecoder._hypothesis` as
:meth:`WhisperDecoder.decode` reads its single one. Callers keep passing :class:`Features`
and :class:`Prompt` and getting :class:`Hypothesis` objects.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.errors import ModelError

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

LANGUAGE = "zh"
WHISPER_MAX_LENGTH = 448
"""Whisper's decoder context (prompt + output tokens)."""
MAX_INITIAL_TIMESTAMP_INDEX = 50
"""faster-whisper's default ``max_initial_timestamp`` of 1 s, in 20 ms timestamp steps."""
WHISPER_ENCODER_FRAMES = 1500
"""Encoder output positions of one 30-second window (20 ms each)."""
WHISPER_WINDOW_S = 30.0
"""Whisper's trained input window."""
WINDOW_TAIL_S = 1.0
"""Padding (log-mel of silence) kept after an utterance in a shortened encoder window."""
MEL_FRAMES_PER_S = 100
"""Log-mel frames per second of audio (10 ms hop)."""


def encoder_frames(content_frames: int, window_s: float) -> int:
    """Mel frames (10 ms) the encoder sees for ``content_frames`` of audio.

    Whisper's 30 s, or with a shorter ``window_s`` the utterance plus :data:`WINDOW_TAIL_S`
    of padding, at least ``window_s`` (the encoder's cost grows faster than linearly with its
    window); always even, at most 30 s.
    """
    full = int(WHISPER_WINDOW_S * MEL_FRAMES_PER_S)
    if window_s >= WHISPER_WINDOW_S:
        return full
    wanted = max(int(window_s * MEL_FRAMES_PER_S), content_frames + int(WINDOW_TAIL_S * MEL_FRAMES_PER_S))
    return min(full, wanted + wanted % 2)  # even: the encoder halves it


def compression_ratio(text: str) -> float:
    """How well ``text`` compresses (zlib, as Whisper measures it): loops compress well."""
    from faster_whisper.transcribe import get_compression_ratio

    return float(get_compression_ratio(text))


@dataclass(frozen=True)
class Features:
    """One utterance's encoder output, kept for decoding and for forced scoring.

    ``content_frames`` counts the log-mel frames (10 ms) of the utterance itself;
    ``window_frames`` those the encoder saw (the utterance padded, see :func:`encoder_frames`).
    """

    encoder_output: Any = field(repr=False)
    """A CTranslate2 ``StorageView`` of shape (1, window_frames // 2, model width)."""
    content_frames: int
    window_frames: int


@dataclass(frozen=True)
class Prompt:
    """Decoder start tokens: ``<|startofprev|>`` prompt/hotwords, then sot, language, task,
    no-timestamps. Build with :meth:`WhisperDecoder.prompt`."""

    tokens: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Hypothesis:
    """What the decoder wrote for one utterance, before any text policy (no simplification,
    no gate).

    ``text`` is the decoded ``tokens`` (text tokens only), stripped; ``avg_logprob`` is the
    mean log-probability per token counting the end-of-text token (faster-whisper's measure);
    ``no_speech_prob`` the probability of the no-speech token at the first step.
    """

    text: str
    tokens: tuple[int, ...]
    avg_logprob: float
    no_speech_prob: float
    step_logits: tuple[Any, ...] = field(default=(), repr=False)
    """Per decoding step, the logits over the vocabulary (only with ``keep_step_logits``)."""


class WhisperDecoder:
    """A loaded CTranslate2 Whisper model; see the module docstring. Build with :meth:`load`."""

    def __init__(self, model: WhisperModel) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._model = model
        self._tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=LANGUAGE
        )
        self._suppress_tokens = list(get_suppressed_tokens(self._tokenizer, [-1]))
        self._prompts: dict[tuple[str | None, str | None], Prompt] = {}
        self._prompt_lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: str, *, device: str, compute_type: str, threads: int, workers: int) -> WhisperDecoder:
        """Load a CTranslate2 Whisper model folder (nothing is downloaded).

        ``threads`` per concurrent call, ``workers`` concurrent calls. Raises
        :class:`ModelError` naming the folder when CTranslate2 cannot load it.
        """
        from faster_whisper import WhisperModel

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
                f"{model_dir}: cannot load Whisper model on {device}/{compute_type}: {first_line}"
            ) from exc
        return cls(model)

    def prompt(self, initial_prompt: str | None, hotwords: str | None) -> Prompt:
        """The start tokens for ``initial_prompt`` text and faster-whisper ``hotwords`` (cached)."""
        key = (initial_prompt, hotwords)
        with self._prompt_lock:
            if key not in self._prompts:
                previous = self._tokenizer.encode(" " + initial_prompt.strip()) if initial_prompt else []
                tokens = self._model.get_prompt(self._tokenizer, previous, without_timestamps=True, hotwords=hotwords)
                self._prompts[key] = Prompt(tuple(tokens))
            return self._prompts[key]

    def encode(self, audio: np.ndarray, *, window_s: float = WHISPER_WINDOW_S) -> Features:
        """Log-mel features of float32 16 kHz ``audio`` (at most 30 s) through the encoder, padded
        to :func:`encoder_frames` for ``window_s``."""
        from faster_whisper.audio import pad_or_trim

        mel = self._model.feature_extractor(audio)
        content_frames = max(mel.shape[-1] - 1, 0)
        window = encoder_frames(content_frames, window_s)
        encoder_output = self._model.encode(pad_or_trim(mel[:, :content_frames], window))
        return Features(encoder_output, content_frames, window)

    def decode(
        self,
        features: Features,
        prompt: Prompt,
        *,
        beam_size: int = 1,
        max_new_tokens: int,
        keep_step_logits: bool = False,
    ) -> Hypothesis:
        """One search (beam width ``beam_size``; 1 is greedy) after ``prompt``, no temperature
        fallback, no timestamps, at most ``max_new_tokens`` (capped by Whisper's context).

        ``keep_step_logits`` keeps each step's logits for :meth:`first_token_logprobs`
        (greedy search only).
        """
        max_new_tokens = max(1, min(WHISPER_MAX_LENGTH - len(prompt), max_new_tokens))
        # The options faster-whisper's transcribe passes for one window without timestamps.
        [result] = self._model.model.generate(
            features.encoder_output,
            [list(prompt.tokens)],
            beam_size=beam_size,
            max_length=len(prompt) + max_new_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress_tokens,
            max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
            return_logits_vocab=keep_step_logits,
        )
        return self._hypothesis(result, keep_step_logits)

    def decode_batch(
        self,
        items: list[tuple[Features, Prompt, int]],
        *,
        beam_size: int = 1,
        keep_step_logits: bool = False,
    ) -> list[Hypothesis]:
        """:meth:`decode` of several utterances (``(features, prompt, max_new_tokens)`` each, e.g. of
        different rooms) in one search per encoder window size: the decoder's steps run as one
        batch. Greedy results equal :meth:`decode`'s token for token (checked on the sample
        clips); the length cap is the batch's largest, so only a runaway loop can run longer.
        Measured on 2 CPU cores: 4 utterances in 0.29 s instead of 0.64 s (benchmarks/cluster.py)."""
        import ctranslate2

        results: list[Hypothesis | None] = [None] * len(items)
        groups: dict[int, list[int]] = {}
        for index, (features, _prompt, _max_new) in enumerate(items):
            groups.setdefault(features.window_frames, []).append(index)
        for indices in groups.values():
            stacked = np.concatenate([np.asarray(items[i][0].encoder_output) for i in indices])
            longest = max(
                len(items[i][1]) + max(1, min(WHISPER_MAX_LENGTH - len(items[i][1]), items[i][2])) for i in indices
            )
            batch = self._model.model.generate(
                ctranslate2.StorageView.from_array(stacked),
                [list(items[i][1].tokens) for i in indices],
                beam_size=beam_size,
                max_length=min(longest, WHISPER_MAX_LENGTH),
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=self._suppress_tokens,
                max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
                return_logits_vocab=keep_step_logits,
            )
            for i, result in zip(indices, batch, strict=True):
                results[i] = self._hypothesis(result, keep_step_logits)
        return [r for r in results if r is not None]

    def _hypothesis(self, result: Any, keep_step_logits: bool) -> Hypothesis:
        """One CTranslate2 ``WhisperGenerationResult`` (best sequence) as a :class:`Hypothesis`."""
        sequence = result.sequences_ids[0]
        tokens = tuple(t for t in sequence if t < self._tokenizer.eot)
        # CTranslate2 returns the cumulative log-probability over the length (length penalty 1);
        # faster-whisper's average counts the end-of-text token too.
        avg_logprob = result.scores[0] * len(sequence) / (len(sequence) + 1)
        return Hypothesis(
            text=self._tokenizer.decode(list(tokens)).strip(),
            tokens=tokens,
            avg_logprob=float(avg_logprob),
            no_speech_prob=float(result.no_speech_prob),
            step_logits=tuple(result.logits[0]) if keep_step_logits else (),
        )

    def tokens(self, text: str) -> tuple[int, ...]:
        """``text``'s text tokens (no special tokens)."""
        return tuple(self._tokenizer.encode(text))

    def score(self, features: Features, prompt: Prompt, texts: list[str]) -> list[float]:
        """Log-probability (nats) of each of ``texts`` as the whole transcript of ``features``.

        Forced decoding after ``prompt`` (CTranslate2 ``Whisper.align``), one decoder pass per
        text, no search. Scores of different texts for the same features compare.
        """
        start = list(prompt.tokens[:-1])  # align() appends <|notimestamps|> itself
        frames = max(1, min(features.content_frames // 2, WHISPER_ENCODER_FRAMES))
        scores: list[float] = []
        for text in texts:
            tokens = self._tokenizer.encode(text) or [self._tokenizer.eot]
            # One text per call: on CPU a batch costs more than the same texts one by one (the
            # cross-attention keys are recomputed per batch item; 46 ms for one, 245 for four).
            [result] = self._model.model.align(features.encoder_output, start, [tokens], [frames])
            probabilities = np.asarray(result.text_token_probs, dtype=np.float64)
            scores.append(float(np.log(np.maximum(probabilities, 1e-30)).sum()))
        return scores

    def first_token_logprobs(self, first_pass: Hypothesis, texts: list[str]) -> list[float | None]:
        """For each text, the log-probability ``first_pass`` gave, at the step where the text first
        departs from its tokens, to the text's token there (``None`` when it does not depart
        within the steps kept, or no step logits were kept)."""
        if not first_pass.step_logits:
            return [None] * len(texts)
        out: list[float | None] = []
        for text in texts:
            tokens = self._tokenizer.encode(text)
            step = 0
            while step < min(len(tokens), len(first_pass.tokens)) and tokens[step] == first_pass.tokens[step]:
                step += 1
            if step >= len(tokens) or step >= len(first_pass.step_logits):
                out.append(None)
                continue
            logits = np.asarray(first_pass.step_logits[step], dtype=np.float64).reshape(-1)
            peak = logits.max()
            out.append(float(logits[tokens[step]] - peak - np.log(np.exp(logits - peak).sum())))
        return out

    def scorer(self, features: Features, prompt: Prompt, *, transcript: str, first_pass: Hypothesis) -> UtteranceScorer:
        """The decoder's judgement of texts for one utterance (:class:`monitor.asr.rescore.TextScorer`).

        ``transcript`` is the text being rescored. The first-token check reads ``first_pass``'s
        logits, valid only while its tokens spell ``transcript`` (not after simplification or
        the gate changed it); otherwise the check answers ``None`` (not known) for every text.
        """
        same_text = self.tokens(transcript) == first_pass.tokens
        return UtteranceScorer(self, features, prompt, first_pass if same_text else None)


@dataclass(frozen=True)
class UtteranceScorer:
    """Forced-decoding scores of texts on one utterance's features (from :meth:`WhisperDecoder.scorer`)."""

    decoder: WhisperDecoder
    features: Features
    prompt: Prompt
    first_pass: Hypothesis | None

    def score(self, texts: list[str]) -> list[float]:
        """Log-probability (nats) of each text as the whole utterance."""
        return self.decoder.score(self.features, self.prompt, texts)

    def first_token_logprobs(self, texts: list[str]) -> list[float | None]:
        """The first pass's log-probability of each text's first departing token (``None``: not known)."""
        if self.first_pass is None:
            return [None] * len(texts)
        return self.decoder.first_token_logprobs(self.first_pass, texts)
