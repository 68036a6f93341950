"""Plain text from catalog fields: HTML tags and entities out, whitespace collapsed.

Descriptions arrive as HTML on many retailers' feeds (``<p>``, ``<li>``, ``&amp;``); a model
with a 64-token budget should spend it on words, not markup, and both the embedder and the
reranker must see the same words whatever form the catalog stores them in.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_SPACE = re.compile(r"\s+")
# Elements whose content is code or metadata, never words a shopper reads.
_HIDDEN = frozenset({"style", "script", "noscript", "template", "head", "title"})
# Cheap pre-check: text with no tag-like "<x", "</", "<!" is returned without parsing.
_MAYBE_TAG = re.compile(r"<[A-Za-z!/?]")


class _Words(HTMLParser):
    """The standard library's HTML tokenizer (quoted attributes may hold ``>``; entities are
    decoded): keeps text outside hidden elements, one space per tag boundary."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN and self._hidden:
            self._hidden -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def plain_text(text: str) -> str:
    """``"<p>Soft &amp; warm</p><li>Wool</li>"`` -> ``"Soft & warm Wool"``; the contents of
    ``<style>`` and ``<script>`` are dropped, ``"3 < 5"`` stays text."""
    if _MAYBE_TAG.search(text):
        parser = _Words()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    elif "&" in text:
        text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()


def lone_surrogate_at(text: str) -> int | None:
    """Index of the first lone surrogate (``\\ud800`` from JSON, an undecodable byte from the
    command line), or None: such text cannot be stored, tokenized or hashed as UTF-8."""
    return next((i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF), None)
