"""Word boundaries from jieba, with every lexicon surface in its dictionary.

Boundaries decide whether a short lexicon hit is a word of its own ("第一" in
"销量第一") or part of another word ("第一时间", "天然气"). Tokenizing is the most
expensive step of the engine, so it is done lazily, per clause, only for clauses that
contain a hit that needs a boundary check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import jieba

jieba.setLogLevel(logging.WARNING)


class WordSegmenter:
    """A private jieba tokenizer (the global one is left untouched for other users)."""

    def __init__(self, lexicon_words: Iterable[str], common_words: Iterable[str] = ()) -> None:
        """``lexicon_words`` are our terms; ``common_words`` are everyday words the
        dictionary lacks (主播, 链接): both become segmentable, only the latter count
        as :meth:`is_dictionary_word`."""
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        self._lexicon_words = frozenset(lexicon_words) - frozenset(common_words)
        self._common_words = frozenset(common_words)
        for word in self._lexicon_words | self._common_words:
            # freq=None lets jieba pick a frequency that makes the word segmentable as
            # a whole without overriding longer dictionary words that contain it.
            self._tokenizer.add_word(word)

    def tokens(self, text: str) -> list[str]:
        """The words of ``text`` (precise mode, HMM on for words jieba does not know)."""
        return list(self._tokenizer.cut(text, HMM=True))

    def boundaries(self, text: str) -> set[int]:
        """Offsets in ``text`` where a word starts or ends (0 and ``len(text)`` included).

        Dictionary words only (no HMM guessing of unknown words): a boundary check
        rejects a hit only inside a word the dictionary knows (天然气), and unknown
        runs as single characters never swallow a hit.
        """
        offsets = {0}
        position = 0
        for token in self._tokenizer.cut(text, HMM=False):
            position += len(token)
            offsets.add(position)
        return offsets

    def is_frequent_word(self, word: str, min_freq: int) -> bool:
        """True for an everyday word: one of the live-room words the dictionary lacks
        (主播, 链接), or a word jieba's own dictionary counts at least ``min_freq`` times
        in its ~60 million token corpus. Our lexicon terms are never frequent words."""
        if word in self._common_words:
            return True
        if word in self._lexicon_words:
            return False
        return self._tokenizer.FREQ.get(word, 0) >= min_freq

    def is_dictionary_word(self, word: str, min_freq: int = 3) -> bool:
        """True for a word jieba's own dictionary knows (not one we added from the lexicon)."""
        if word in self._common_words:
            return True
        if word in self._lexicon_words:
            return False
        return self._tokenizer.FREQ.get(word, 0) >= min_freq
