"""The pair tokenizer cuts long product texts before tokenizing; the ids must be exactly
those of the whole text, on every real product text and on text built to defeat the cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from rex_search.catalog.prompt import product_text, query_text
from rex_search.catalog.reader import read_catalog
from rex_search.model_files import resolve_model
from rex_search.rerank.base import load_reranker
from rex_search.rerank.cross_encoder import _first_words, _PairTokenizer
from tests.conftest import REPO


@pytest.fixture(scope="module")
def tokenizer() -> _PairTokenizer:
    return _PairTokenizer(Path(resolve_model("rex-reranker-bge-small")) / "tokenizer.json")


def whole(tokenizer: _PairTokenizer, query: str, texts: list[str], max_length: int):
    """The reference: the whole texts, tokenized and truncated, no cut."""
    raw = tokenizer._tokenizer
    raw.enable_truncation(max_length, strategy="longest_first")
    return [e.ids for e in raw.encode_batch([(query, t) for t in texts])]


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    """Every sample product text, longest first."""
    catalog = REPO / "data" / "esci-sample" / "catalog.parquet"
    texts = [product_text(p) for batch in read_catalog(catalog) for p in batch.products]
    assert len(texts) > 6000 and max(len(t) for t in texts) > 1000
    return sorted(texts, key=len, reverse=True)


def differing(tokenizer: _PairTokenizer, query: str, texts: list[str],
              max_length: int) -> list[int]:
    """Indexes of the texts whose cut ids differ from the whole text's (not a diff of
    thousands of lists)."""
    got = tokenizer([query_text(query)] * len(texts), texts, "longest_first", max_length)
    expected = whole(tokenizer, query_text(query), texts, max_length)
    return [i for i, (a, b) in enumerate(zip(got["input_ids"], expected, strict=True))
            if a != b]


@pytest.mark.parametrize("max_length", [16, 64, 256])
def test_every_sample_product_text_gets_the_ids_of_the_whole_text(
        tokenizer, sample_texts, max_length):
    bad = differing(tokenizer, "usb c charger", sample_texts, max_length)
    assert not bad, (bad[:5], sample_texts[bad[0]][:300])


# A query truncated too: the whole-text reference then builds every pair of overflowing
# pieces (gigabytes over the whole catalog), so the longest 200 texts stand for the rest.
@pytest.mark.parametrize(("query", "max_length"), [
    ("a rather long query " * 20, 64),   # ~83 query tokens: both sides truncated
    ("a rather long query " * 20, 256),  # the whole query kept, the text cut
    ("laptop bag " * 15, 64),            # ~32 tokens: the sides tie on length
])
def test_long_queries_get_the_ids_of_the_whole_text(tokenizer, sample_texts, query,
                                                     max_length):
    bad = differing(tokenizer, query, sample_texts[:200], max_length)
    assert not bad, (bad[:5], sample_texts[bad[0]][:300])


def test_words_that_are_no_tokens_fall_back_to_the_whole_text(tokenizer):
    zero_width = " ".join(["\u200b"] * 200)  # 200 "words", no token among them
    texts = [f"Title: cable\nDescription: {zero_width} braided nylon usb c " * 3,
             "Title: x\nDescription: " + "\u200b " * 64 + "tail words here"]
    assert _first_words(texts[1], 64) != texts[1]  # the cut happens
    got = tokenizer(["Query: usb"] * 2, texts, "longest_first", 64)
    assert got["input_ids"] == whole(tokenizer, "Query: usb", texts, 64)
    assert tokenizer._tokenizer.id_to_token(got["input_ids"][1][-2]) == "here"


def test_first_words_cuts_after_the_nth_word():
    assert _first_words("a  bb\nccc d", 3) == "a  bb\nccc "
    assert _first_words("a b", 5) == "a b"
    assert _first_words("", 3) == ""


def test_the_bundled_reranker_feeds_the_model_the_whole_texts_ids(tokenizer, sample_texts):
    reranker = load_reranker("rex-reranker-bge-small")
    texts = sample_texts[:50] + [
        "Title: Laptop bag 16 inch\nDescription: " + "padded sleeve, water resistant " * 80]
    got = reranker.encode("laptop bag", texts)["input_ids"]
    assert got == whole(tokenizer, query_text("laptop bag"), texts, reranker.max_tokens)
