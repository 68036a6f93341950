"""Plain text from catalog fields: HTML tags and entities out, whitespace collapsed.

Descriptions arrive as HTML on many retailers' feeds (``<p>``, ``<li>``, ``&amp;``); a model
with a 64-token budget should spend it on words, not markup, and both the embedder and the
reranker must see the same words whatever form the catalog stores them in.
"""

from __future__ import annotations

import html
import re

# A tag starts with a letter, "/" or "!" right after "<" ("3 < 5" is text, not markup); bounded
# length, so a stray "<" cannot make the scan quadratic.
_TAG = re.compile(r"</?[A-Za-z!][^<>]{0,500}>")
_SPACE = re.compile(r"\s+")


def plain_text(text: str) -> str:
    """``"<p>Soft &amp; warm</p><li>Wool</li>"`` -> ``"Soft & warm Wool"``."""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()


def lone_surrogate_at(text: str) -> int | None:
    """Index of the first lone surrogate (``\\ud800`` from JSON, an undecodable byte from the
    command line), or None: such text cannot be stored, tokenized or hashed as UTF-8."""
    return next((i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF), None)
