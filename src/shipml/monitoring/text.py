"""What drift means for free text: three numbers per text, compared like any feature.

A text is not compared word by word: the words of two samples of the same language always
differ. What moves when the traffic changes is its shape and its words' familiarity:

- ``length``: characters;
- ``words``: word count (a word is a run of letters, digits or ``_``, case folded);
- ``unseen_share``: the share of its words that never occur in the training texts.

The vocabulary is built at save time from the training texts *left out of the reference
sample*, so the sample's own unseen share is an honest estimate of what new text from the
training distribution scores, and live traffic is compared with that, not with zero.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

WORD = re.compile(r"\w+")
FEATURES = ("length", "words", "unseen_share")
MAX_VOCABULARY = 50_000  # the most frequent words; keeps the reference blob small
# A string field is free text (not a category) when it has many distinct values and
# several words on average.
TEXT_MIN_DISTINCT = 50
TEXT_MIN_WORDS = 3.0


def words(text: str) -> list[str]:
    return WORD.findall(text.casefold())


def features(text: str, vocabulary: frozenset[str]) -> tuple[float, float, float]:
    """``(length, words, unseen_share)`` of one text."""
    tokens = words(text)
    if not tokens:
        return float(len(text)), 0.0, 0.0
    unseen = sum(1 for token in tokens if token not in vocabulary)
    return float(len(text)), float(len(tokens)), unseen / len(tokens)


def vocabulary(texts: Iterable[str]) -> list[str]:
    """The training vocabulary: the most frequent words, most frequent first."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(words(text))
    return [word for word, _ in counts.most_common(MAX_VOCABULARY)]


def looks_like_text(values: list[str], distinct: int) -> bool:
    if distinct < TEXT_MIN_DISTINCT or not values:
        return False
    return sum(len(words(v)) for v in values) / len(values) >= TEXT_MIN_WORDS
