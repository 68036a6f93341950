"""Mechanics of the decoder (Qwen3-Reranker style) path with a tiny randomly initialised model.

The real RexReranker-0.6B weights cannot be fetched offline, so these tests prove formatting,
left padding, positions and the yes/no read-out, not ranking quality.
"""

from __future__ import annotations

import re

import pytest
import torch

from rex_search.rerank.decoder import PREFIX, SUFFIX, DecoderReranker, format_pair

SPECIAL = ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>"]


def tiny_reranker(tmp_path=None) -> DecoderReranker:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    text = PREFIX + SUFFIX + format_pair("q", "d")
    for token in SPECIAL:  # special tokens are split off before the word pre-tokenizer runs
        text = text.replace(token, " ")
    words = sorted(set(re.findall(r"\w+|[^\w\s]+", text))
                   | {"yes", "no", "running", "shoes", "laces", "nike", "sofa", "cover", "[UNK]"})
    vocab = {w: i for i, w in enumerate(SPECIAL + [w for w in words if w not in SPECIAL])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]",
                                        pad_token="<|endoftext|>",
                                        additional_special_tokens=SPECIAL[:4])
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=512,
                         pad_token_id=vocab["<|endoftext|>"])
    model = Qwen3ForCausalLM(config).eval()
    return DecoderReranker(loaded=(model, tokenizer), max_tokens=256)


@pytest.fixture(scope="module")
def reranker() -> DecoderReranker:
    return tiny_reranker()


def test_prompt_is_the_qwen3_reranker_template(reranker: DecoderReranker):
    ids = reranker.encode("running shoes", ["nike running shoes"])["input_ids"][0].tolist()
    whole = PREFIX + format_pair("running shoes", "nike running shoes") + SUFFIX
    assert ids == reranker._tokenizer.encode(whole, add_special_tokens=False)
    text = reranker._tokenizer.decode(ids)
    assert "[UNK]" not in text and "yes" in text and "no" in text
    assert text.startswith("<|im_start|> system") and text.endswith("<think> </think>")
    assert "<Query>: running shoes\n<Document>: nike running shoes<|im_end|>" in whole
    assert ids[:len(reranker._prefix)] == reranker._prefix
    assert ids[-len(reranker._suffix):] == reranker._suffix


def test_left_padding_puts_every_rows_last_token_last(reranker: DecoderReranker):
    batch = reranker.encode("sofa", ["sofa cover", "nike running shoes laces sofa cover"])
    mask, ids, positions = batch["attention_mask"], batch["input_ids"], batch["position_ids"]
    assert mask[:, -1].tolist() == [1, 1]  # no row ends in padding
    assert mask[0, 0] == 0 and mask[1, 0] == 1  # the shorter row is padded on the left
    assert ids[0, -len(reranker._suffix):].tolist() == reranker._suffix
    first_real = int((mask[0] == 0).sum())
    assert positions[0, first_real] == 0  # positions count real tokens only
    assert positions[0, -1] == positions[1, -1] - (mask[1].sum() - mask[0].sum())


def test_score_is_p_yes_and_does_not_depend_on_batch_padding(reranker: DecoderReranker):
    texts = ["sofa cover", "nike running shoes with laces and a long description of them"]
    together = reranker.score_texts("running shoes", texts)
    alone = [reranker.score_texts("running shoes", [t])[0] for t in texts]
    assert together == pytest.approx(alone, abs=1e-5)
    batch = reranker.encode("running shoes", texts[:1])
    with torch.inference_mode():
        last = reranker._model(**batch).logits[0, -1]
    yes, no = last[reranker.yes_id].item(), last[reranker.no_id].item()
    expected = torch.softmax(torch.tensor([no, yes]), 0)[1].item()
    assert together[0] == pytest.approx(expected, abs=1e-6) and 0 < together[0] < 1


def test_a_tokenizer_without_yes_is_refused():
    from rex_search.errors import ModelError

    with pytest.raises(ModelError, match="no single token 'maybe'"):
        tiny_reranker()._token_id("maybe")


def test_a_saved_decoder_directory_loads_as_a_yes_no_reranker(tmp_path, reranker):
    from rex_search.rerank.base import load_reranker

    reranker._model.save_pretrained(tmp_path)
    reranker._tokenizer.save_pretrained(tmp_path)
    loaded = load_reranker(str(tmp_path))
    assert isinstance(loaded, DecoderReranker) and "decoder yes/no" in loaded.name
    texts = ["sofa cover", "nike running shoes"]
    assert loaded.score_texts("sofa", texts) == pytest.approx(
        reranker.score_texts("sofa", texts), abs=1e-5)
