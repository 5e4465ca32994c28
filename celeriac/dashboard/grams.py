"""Trigrams as words, for databases whose only text index is a word index (MySQL, MariaDB).

Neither MySQL nor MariaDB can index substrings: FULLTEXT finds words. So the
store writes, beside each task, the set of its searched text's trigrams
(lower-cased), each hashed to a six-hex-digit word: ``"nop"`` becomes
``"3f1c0a"``. A FULLTEXT index over those words finds the rows holding the
trigrams of a term, as PostgreSQL's pg_trgm does, and ``LIKE`` then checks each
candidate, so a hash collision can only cost time, never a wrong answer.

InnoDB reads the whole list of rows of every word a query names, and a word
in most rows (``"use"`` of ``user-...``) makes that list long. So the store also
counts, per word, the tasks written with it (``tasks_words``, in the batch's
transaction; never decreased, so an upper bound), and a search asks only for
the few rarest words of its term, or answers at once when one of them was
never written.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

GRAM = 3
WORD_DIGITS = 6  # 24 bits: collisions are rare, the words stay short


def _word(gram: str) -> str:
    return format(zlib.crc32(gram.encode()) & 0xFFFFFF, "06x")


def _grams(text: str) -> set[str]:
    lowered = text.lower()
    return {lowered[i : i + GRAM] for i in range(len(lowered) - GRAM + 1)}


def gram_words(texts: Iterable[str | None]) -> str:
    """The words of every trigram of ``texts`` (each text on its own), space-separated."""
    grams: set[str] = set()
    for text in texts:
        if text:
            grams |= _grams(text)
    return " ".join(sorted(_word(gram) for gram in grams))


def term_words(term: str) -> list[str]:
    """The distinct words of ``term``'s trigrams (none under 3 characters)."""
    return sorted({_word(gram) for gram in _grams(term)})


def gram_query(words: list[str]) -> str:
    """A boolean-mode FULLTEXT query requiring every one of ``words``."""
    return " ".join(f"+{word}" for word in words)
