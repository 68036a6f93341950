from __future__ import annotations

from rex_search.catalog.prompt import product_text
from rex_search.catalog.schema import Product, embedding_text
from rex_search.catalog.text import plain_text


def test_plain_text_drops_tags_and_decodes_entities():
    assert plain_text('<div class="d"><p>Soft &amp; warm</p><ul><li>Wool</li>'
                      "<li>5&quot; wide</li></ul></div>") == 'Soft & warm Wool 5" wide'
    assert plain_text("3 < 5 and 7 > 2") == "3 < 5 and 7 > 2"  # not markup: kept
    assert plain_text("a" + "<" * 5000) == "a" + "<" * 5000  # no catastrophic backtracking


def test_model_and_embedder_see_the_same_words_whatever_the_markup():
    clean = Product("A", "Wool socks", description="Soft and warm. Machine washable.")
    marked = Product("A", "Wool socks",
                     description="<p>Soft and warm.</p>\n<p><b>Machine</b> washable.</p>")
    assert product_text(marked) == product_text(clean)
    assert embedding_text(marked) == embedding_text(clean)
