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


def test_style_and_script_contents_are_not_words():
    assert plain_text('<style>.a{color:red}</style><p>Soft <b>cotton</b></p>'
                      '<script>var x=1</script>') == "Soft cotton"


def test_a_quoted_attribute_holding_a_bracket_does_not_break_the_text():
    assert plain_text('<p title="a > b" data-x=\'<i>\'>Hi</p>there') == "Hi there"
    assert plain_text("<!-- a > b -->Mug<br/>12 oz") == "Mug 12 oz"
