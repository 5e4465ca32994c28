"""MySQL's trigram words: what the store writes and what a search asks for."""

from __future__ import annotations

from celeriac.dashboard.grams import gram_query, gram_words, term_words


def test_a_term_asks_for_words_every_row_holding_it_has() -> None:
    """Given a text, Expect each of its substrings' words among the text's words,
    ignoring case, and a column boundary to make no trigram."""
    text = 'proj.Mailer ["Ada@Example.com", 42]'
    words = set(gram_words([text, "other"]).split())
    for term in ("ada@example", "MAILER", "proj.m", '"ada', 'm", 4', "42]"):
        assert set(term_words(term)) <= words, term
    assert not set(term_words("]ot")) <= words


def test_words_are_six_hex_digits_and_a_query_requires_each() -> None:
    words = term_words("user-4242")
    assert len(words) == len(set(words)) == 7  # use ser er- r-4 -42 424 242
    assert all(len(word) == 6 and int(word, 16) >= 0 for word in words)
    assert gram_query(words[:2]) == f"+{words[0]} +{words[1]}"


def test_empty_and_short_texts_have_no_words() -> None:
    assert gram_words([None, "", "ab"]) == ""
    assert term_words("ab") == []
