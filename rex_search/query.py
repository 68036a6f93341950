"""Query understanding: a raw shopper query -> model text + structured constraints.

Cross-encoders and embeddings do not honour negation ("no nike" pulls Nike closer), so
exclusions, non-branded intent, prices and sizes are taken out of the text the models see and
enforced by filters and rules instead. Brands are recognised only against the catalog's known
brands (`KnownBrands`), case- and punctuation-insensitively; a negated word that is not a known
brand is never turned into an exclusion (no over-dropping), it is only removed from the model
text and reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rex_search.catalog.schema import brand_key
from rex_search.catalog.text import lone_surrogate_at
from rex_search.errors import QueryError

# Words that happen to be brand names in real catalogs ("Now", "At", "Gap") but are far more
# often plain words: never read as a brand unless negated explicitly and nothing else matches.
_STOPWORDS = frozenset({
    "a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with",
    "now", "new", "one", "all", "best", "top", "pro", "plus", "max", "mini", "big", "small",
    "black", "white", "red", "blue", "green", "kids", "men", "women", "mens", "womens", "girls",
    "boys", "baby", "home",
})
_CORPORATE = ("incorporated", "inc", "llc", "ltd", "limited", "corporation", "corp", "co",
              "company", "gmbh", "official", "store", "brand")
GENERIC_BRANDS = frozenset({"generic", "unbranded", "nobrand", "unknown", "na", "none", "oem",
                            "nonbranded", "noname"})

_NEGATION = re.compile(
    r"(?:^|\s)(?:-(?=\w)|(?:no|not|without|w/o|except|excluding|exclude|minus|non|"
    r"other\s+than|but\s+not|anything\s+but|anything\s+except|neither|nor)\s+)", re.I)
# "not nike or adidas", "no nike, adidas or puma", "neither nike nor puma": every brand of the
# list is excluded (a list after a negation is read as one negated list).
_LIST_JOINER = re.compile(r"^\s*(?:,\s*(?:or\s+|nor\s+|and\s+)?|or\s+|nor\s+|/\s*)", re.I)
_NON_BRANDED = re.compile(
    r"\b(?:non[-\s]?branded|un[-\s]?branded|generic|no[-\s]?brand|no[-\s]name|off[-\s]brand|"
    r"white[-\s]label)\b", re.I)
_AD_FREE = re.compile(r"\b(?:no\s+ads|without\s+ads|ad[-\s]?free|no\s+advertis\w*)\b", re.I)
_NUM = r"(?:[$£€]|us\$)?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?!\d|[.,]\d)"
# A currency word after the number. Not "pounds": that is a weight ("dumbbell 50 pounds").
_CURRENCY_WORD = r"(?:dollars?|usd|bucks|euros?|eur|gbp|quid)"
_MAX_PRICE = re.compile(
    r"\b(?:under|below|less\s+than|cheaper\s+than|max(?:imum)?|up\s+to|at\s+most|<)\s*"
    + _NUM + r"\s*" + _CURRENCY_WORD + r"?(?!\s*(?:inch|in\b|tb|gb|oz|lb|ft|cm|mm))", re.I)
_MIN_PRICE = re.compile(
    r"\b(?:over|above|more\s+than|at\s+least|min(?:imum)?|>)\s*" + _NUM
    + r"\s*" + _CURRENCY_WORD + r"?(?!\s*(?:inch|in\b|tb|gb|oz|lb|ft|cm|mm))", re.I)
_BETWEEN = re.compile(r"\bbetween\s*" + _NUM + r"\s*(?:and|-|to)\s*" + _NUM
                      + r"\s*" + _CURRENCY_WORD + "?", re.I)
_UNITS = {
    "in": ("inches", "inch", "in", '"', "”", "''"), "ft": ("feet", "foot", "ft", "'"),
    "tb": ("tb", "terabyte", "terabytes"), "gb": ("gb", "gigabyte", "gigabytes"),
    "oz": ("oz", "ounce", "ounces"), "lb": ("lbs", "lb", "pound", "pounds"),
    "cm": ("cm",), "mm": ("mm",), "ml": ("ml",), "l": ("liter", "liters", "litre", "l"),
    "mah": ("mah",), "w": ("watt", "watts", "w"), "v": ("volt", "volts", "v"),
    "pack": ("pack", "pk", "count", "ct", "pcs", "pieces"),
}
_UNIT_OF = {alias: unit for unit, aliases in _UNITS.items() for alias in aliases}
_SIZE = re.compile(
    r"(?<![\w.])(\d+\s+\d+/\d+|\d+/\d+|\d+(?:\.\d+)?)\s*-?\s*("
    + "|".join(sorted((re.escape(a) for a in _UNIT_OF), key=len, reverse=True))
    + r")(?![\w])", re.I)


@dataclass(frozen=True)
class Size:
    value: float
    unit: str
    text: str


@dataclass(frozen=True)
class ParsedQuery:
    """What the query asks for. ``text`` is what the models see."""

    raw: str
    text: str
    exclude_brands: tuple[str, ...] = ()  # display names of known brands
    exclude_brand_keys: tuple[str, ...] = ()  # every catalog brand key in those families
    brands: tuple[str, ...] = ()  # brands the query names (a preference, not a filter)
    brand_keys: tuple[str, ...] = ()
    non_branded: bool = False
    ad_free: bool = False
    sizes: tuple[Size, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    ignored_negations: tuple[str, ...] = ()  # negated words that are not known brands
    corrected_brands: tuple[tuple[str, str], ...] = ()  # (as typed, brand excluded)
    notes: tuple[str, ...] = field(default=())

    def constraints(self) -> dict[str, object]:
        return {k: v for k, v in {
            "model_text": self.text, "exclude_brands": list(self.exclude_brands),
            "brands": list(self.brands), "non_branded": self.non_branded,
            "ad_free": self.ad_free, "sizes": [f"{s.value:g} {s.unit}" for s in self.sizes],
            "min_price": self.min_price, "max_price": self.max_price,
            "ignored_negations": list(self.ignored_negations),
            "corrected_brands": [f"{typed} -> {brand}" for typed, brand in self.corrected_brands],
            "notes": list(self.notes),
        }.items() if v not in (None, False, [], ())}


def brand_family(key: str) -> str:
    """Brand key without corporate suffixes: "hpinc" -> "hp", "sonycorporation" -> "sony"."""
    for suffix in _CORPORATE:
        if key.endswith(suffix) and len(key) - len(suffix) >= 2:
            return key[: -len(suffix)]
    return key


class KnownBrands:
    """The catalog's brands, looked up by phrase; aliases map extra names to a brand."""

    def __init__(self, brands: Mapping[str, str], aliases: Mapping[str, str] | None = None):
        self.display: dict[str, str] = dict(brands)  # key -> display name
        self.families: dict[str, set[str]] = {}
        for key in self.display:
            self.families.setdefault(brand_family(key), set()).add(key)
        for alias, target in (aliases or {}).items():
            family = brand_family(brand_key(target))
            self.families.setdefault(brand_key(alias), set()).update(
                self.families.get(family, {brand_key(target)}))
            self.display.setdefault(brand_key(alias), target)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> KnownBrands:
        return cls({brand_key(n): n for n in names if brand_key(n)})

    def lookup(self, phrase: str) -> set[str] | None:
        """All brand keys in the family the phrase names, or None if it names no known brand."""
        key = brand_key(phrase)
        if not key:
            return None
        family = self.families.get(key) or self.families.get(brand_family(key))
        return set(family) if family else None

    def near(self, phrase: str) -> str | None:
        """The one brand family a misspelt single word names ("skechrs" -> "skechers"): edit
        distance 1 for words of 5-7 letters, 2 from 8 on; None when no family or more than one
        is that close (an exclusion is only guessed when the guess is unambiguous)."""
        key = brand_key(phrase)
        if len(key) < 5 or key in _STOPWORDS:
            return None
        limit = 1 if len(key) < 8 else 2
        close = {family for family in self.families
                 if abs(len(family) - len(key)) <= limit and len(family) >= 4
                 and key not in (family + "s", family + "es")  # "no apples" is fruit
                 and _edit_distance(key, family, limit) <= limit}
        return close.pop() if len(close) == 1 else None

    def name(self, phrase: str) -> str:
        keys = self.lookup(phrase) or set()
        return self.display.get(brand_key(phrase)) or (
            self.display[min(keys)] if keys else phrase)


MAX_QUERY_CHARS = 512


def check_query(raw: object, max_chars: int = MAX_QUERY_CHARS) -> str:
    """``raw`` if it is a searchable query, else a :class:`QueryError` saying why: the same
    refusal for the CLI, the Python API and the service."""
    if not isinstance(raw, str) or not raw.strip():
        raise QueryError(f"the query must be a non-empty string, got {raw!r:.40}")
    if len(raw) > max_chars:
        raise QueryError(f"the query is {len(raw)} characters; at most {max_chars} are accepted")
    bad = lone_surrogate_at(raw)
    if bad is not None:
        raise QueryError(f"the query is not valid Unicode text (a lone surrogate or undecodable "
                         f"byte at character {bad})")
    return raw


def parse_query(raw: str, brands: KnownBrands | None = None,
                detect_brands: bool = True) -> ParsedQuery:
    """Parse ``raw`` into model text and constraints (see the module docstring)."""
    brands = brands or KnownBrands({})
    text = f" {raw.strip()} "
    found = _Negations()

    non_branded = bool(_NON_BRANDED.search(text))
    text = _NON_BRANDED.sub(" ", text)
    ad_free = bool(_AD_FREE.search(text))
    text = _AD_FREE.sub(" ad-free ", text) if ad_free else text

    min_price = max_price = None
    if m := _BETWEEN.search(text):
        low, high = sorted((_number(m.group(1)), _number(m.group(2))))
        min_price, max_price = low, high
        text = text.replace(m.group(0), " ")
    if m := _MAX_PRICE.search(text):
        max_price = _number(m.group(1))
        text = text.replace(m.group(0), " ")
    if m := _MIN_PRICE.search(text):
        min_price = _number(m.group(1))
        text = text.replace(m.group(0), " ")
    notes: tuple[str, ...] = ()
    if min_price is not None and max_price is not None and min_price > max_price:
        # "over $30 under $20" asks for nothing: keep the ceiling (what a shopper can spend)
        notes = (f"ignored the minimum price ${min_price:g}: it is above the maximum "
                 f"${max_price:g}",)
        min_price = None

    text = _take_negations(text, brands, found)

    sizes: tuple[Size, ...] = ()
    for m in list(_SIZE.finditer(text)):
        size = _size(m)
        if size is not None:  # "1/0 inch" is not a size
            sizes += (size,)
            text = text.replace(m.group(0), f" {size.text} ", 1)

    named: tuple[str, ...] = ()
    named_keys: tuple[str, ...] = ()
    if detect_brands:
        named, named_keys = _named_brands(text, brands)
    clean = re.sub(r"\s+", " ", text).strip() or raw.strip()
    return ParsedQuery(
        raw=raw, text=clean, exclude_brands=tuple(found.exclude),
        exclude_brand_keys=tuple(sorted(found.exclude_keys)),
        brands=named, brand_keys=named_keys, non_branded=non_branded, ad_free=ad_free,
        sizes=sizes, min_price=min_price, max_price=max_price,
        ignored_negations=tuple(found.ignored), corrected_brands=tuple(found.corrected),
        notes=notes,
    )


@dataclass
class _Negations:
    exclude: list[str] = field(default_factory=list)  # display names of excluded brands
    exclude_keys: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)  # negated words that name no brand
    corrected: list[tuple[str, str]] = field(default_factory=list)  # misspelt brands read


def _take_negations(text: str, brands: KnownBrands, found: _Negations) -> str:
    """Remove every negated phrase; known brands become exclusions (longest match wins)."""
    position = 0  # resume after the last removal: rescanning from 0 made long queries quadratic
    while m := _NEGATION.search(text, position):
        rest = text[m.end():]
        words = re.findall(r"[\w&'.+-]+", rest)[:4]
        matched, excluded = 0, len(found.exclude)
        for n in range(min(4, len(words)), 0, -1):
            phrase = " ".join(words[:n])
            keys = brands.lookup(phrase)
            if keys and not (n == 1 and brand_key(phrase) in _STOPWORDS):
                found.exclude.append(brands.name(phrase))
                found.exclude_keys.update(keys)
                matched = n
                break
        if matched == 0 and words and (family := brands.near(words[0])) is not None:
            keys = brands.lookup(family) or set()
            found.exclude.append(brands.name(family))
            found.exclude_keys.update(keys)
            found.corrected.append((words[0], brands.name(family)))
            matched = 1
        if matched == 0:
            matched = 1 if words else 0
            if words:
                found.ignored.append(words[0])
        span = _span_of_words(rest, matched)
        if len(found.exclude) > excluded:  # this negation named a brand: a list may follow
            span += _listed_brands(rest[span:], brands, found)
        text = text[: m.start()] + " " + rest[span:]
        position = m.start()
    return text


def _listed_brands(text: str, brands: KnownBrands, found: _Negations) -> int:
    """After a negated brand: the characters of "or adidas", ", puma", "nor nike" that follow,
    each a known brand, added to the exclusions (a plain word ends the list)."""
    taken = 0
    while joiner := _LIST_JOINER.match(text[taken:]):
        rest = text[taken + joiner.end():]
        words = re.findall(r"[\w&'.+-]+", rest)[:3]
        for n in range(len(words), 0, -1):
            phrase = " ".join(words[:n])
            keys = brands.lookup(phrase)
            if keys and not (n == 1 and brand_key(phrase) in _STOPWORDS):
                found.exclude.append(brands.name(phrase))
                found.exclude_keys.update(keys)
                taken += joiner.end() + _span_of_words(rest, n)
                break
        else:
            return taken
    return taken


def _span_of_words(text: str, n: int) -> int:
    end = 0
    for _ in range(n):
        m = re.search(r"[\w&'.+-]+", text[end:])
        if not m:
            break
        end += m.end()
    return end


def _named_brands(text: str, brands: KnownBrands) -> tuple[tuple[str, ...], tuple[str, ...]]:
    words = re.findall(r"[\w&'.+-]+", text)
    names: list[str] = []
    keys: set[str] = set()
    i = 0
    while i < len(words):
        for n in range(min(3, len(words) - i), 0, -1):
            phrase = " ".join(words[i:i + n])
            found = brands.lookup(phrase)
            if found and not (n == 1 and (brand_key(phrase) in _STOPWORDS or len(phrase) < 3
                                          or phrase.isdigit())):
                names.append(brands.name(phrase))
                keys |= found
                i += n
                break
        else:
            i += 1
    return tuple(names), tuple(sorted(keys))


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _size(m: re.Match[str]) -> Size | None:
    number, unit_text = m.group(1), m.group(2).lower()
    if "/" in number:
        whole, _, frac = number.rpartition(" ")
        top, bottom = frac.split("/")
        if float(bottom) == 0:
            return None
        value = (float(whole) if whole else 0.0) + float(top) / float(bottom)
    else:
        value = float(number)
    unit = _UNIT_OF.get(unit_text, unit_text)
    words = {"in": "inch", "ft": "foot", "lb": "pound", "oz": "ounce"}
    return Size(value, unit, f"{number} {words.get(unit, unit)}")


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or ``limit + 1`` as soon as it must exceed ``limit``."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]
