"""Field parsers shared by every reader (catalog, inventory, judgments): one meaning of
"a price", "a number", "a list of strings" everywhere. Each raises `BadField` naming the field,
what was expected and what was found."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from rex_search.catalog.text import lone_surrogate_at

_PRICE = re.compile(r"\d+(?:\.\d+)?")
# Currency marks around a price: symbols and ISO codes, either side ("€12,50", "12.50 EUR").
_CURRENCY = re.compile(r"^(?:[$€£¥₹]|usd|eur|gbp|cad|aud|chf|jpy|inr|us\$|c\$|a\$)\s*|"
                       r"\s*(?:[$€£¥₹]|usd|eur|gbp|cad|aud|chf|jpy|inr)$")
_GROUPED = re.compile(r"\d{1,3}(?:[.,' \u00a0\u202f]\d{3})+")  # 1,299 / 1.299.000 / 1 299
_NO_PRICE = {"", "none", "null", "nan", "n/a", "-", "—"}
MAX_PRICE = 10_000_000.0  # beyond this a "price" is a data error (1e308, inf), not a product
_TRUE = {"true", "1", "yes", "y", "t", "in_stock", "instock"}
_FALSE = {"false", "0", "no", "n", "f", "out_of_stock", "outofstock"}


class BadField(Exception):
    """One field of one row is invalid: the row is rejected, the rest of the file is read."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def valid_unicode(name: str, value: str) -> str:
    """JSON may carry lone surrogates (\\ud800) that no UTF-8 store can hold."""
    if lone_surrogate_at(value) is not None:
        raise BadField(name, "not valid Unicode text (a lone surrogate such as \\ud800)")
    return value


def required_text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        found = "an empty string" if isinstance(value, str) else type_name(value)
        raise BadField(name, f"expected a non-empty string, got {found}")
    return valid_unicode(name, value.strip())


def optional_text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadField(name, f"expected a string, got {type_name(value)}")
    return valid_unicode(name, value.strip()) or None


def text_list(raw: dict[str, Any], name: str) -> tuple[str, ...]:
    value = raw.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        # CSV cells carry lists as JSON arrays; a plain string is a one-item list.
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise BadField(name, f"expected a JSON array of strings ({exc.msg})") from exc
        else:
            return (text,) if text else ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadField(name, f"expected a list of strings, got {type_name(value)}")
    return tuple(valid_unicode(name, v.strip()) for v in value if v.strip())


def price(value: Any, name: str = "price") -> float | None:
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise BadField(name, "expected a number or a price string, got bool")
        return None
    if isinstance(value, int | float):
        price = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in _NO_PRICE:
            return None
        text = _decimal_point(_CURRENCY.sub("", text).strip())
        if not _PRICE.fullmatch(text):
            raise BadField(name, f"expected a single price like '12.99', got {value!r}")
        price = float(text)
    else:
        raise BadField(name, f"expected a number or a price string, got {type_name(value)}")
    if math.isnan(price):
        return None
    if not 0 <= price <= MAX_PRICE:
        raise BadField(name, f"expected a price between 0 and {MAX_PRICE:,.0f}, "
                                 f"got {value!r}")
    return price


def details(value: Any) -> dict[str, str]:
    """A JSON object (or its text) as str -> str; null values dropped."""
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise BadField("details", f"expected a JSON object string ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise BadField("details", f"expected a JSON object, got {type_name(value)}")
    return {valid_unicode("details", str(k)): valid_unicode("details", str(v))
            for k, v in value.items() if v is not None}


def number(raw: dict[str, Any], name: str, low: float = -math.inf,
           high: float = math.inf) -> float | None:
    """A finite number in [low, high], or None when absent (empty, null, NaN)."""
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        parsed = float(value)
    except (TypeError, ValueError):
        raise BadField(name, f"expected a number, got {value!r}") from None
    if math.isnan(parsed):
        return None
    if not (math.isfinite(parsed) and low <= parsed <= high):
        raise BadField(name, f"expected a number between {low:g} and {high:g}, got {value!r}")
    return parsed


def required_number(raw: dict[str, Any], name: str, low: float = -math.inf,
                    high: float = math.inf) -> float:
    """As `number`, but absence (empty, null, NaN) is an error too."""
    value = number(raw, name, low, high)
    if value is None:
        raise BadField(name, f"expected a number between {low:g} and {high:g}, "
                             f"got {raw.get(name)!r}")
    return value


def integer(raw: dict[str, Any], name: str, low: float = -math.inf,
            high: float = math.inf) -> int | None:
    """A whole number in [low, high], or None when absent."""
    value = number(raw, name, low, high)
    if value is None:
        return None
    if not value.is_integer():
        raise BadField(name, f"expected a whole number, got {raw.get(name)!r}")
    return int(value)


def boolean(raw: dict[str, Any], name: str) -> bool | None:
    """true/false (also 1/0, yes/no, in_stock/out_of_stock), or None when absent."""
    value = raw.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadField(name, f"expected true/false, got {value!r}")


def _decimal_point(text: str) -> str:
    """A price string with "." as its only separator: "1.299,99" (European) and "1,299.99"
    (US) both become "1299.99"; "12,50" is 12.50 (two decimals after a lone comma) while
    "1,299" is 1299 (a lone separator before exactly three digits groups thousands)."""
    if "," in text and "." in text:  # the later one is the decimal point
        thousands = "." if text.rfind(",") > text.rfind(".") else ","
        text = text.replace(thousands, "")
    elif _GROUPED.fullmatch(text) and not re.fullmatch(r"\d+\.\d{3}", text):
        return re.sub(r"[.,' \u00a0\u202f]", "", text)
    head, separator, tail = re.sub(r"[' \u00a0\u202f]", "", text).rpartition(",")
    return f"{head}.{tail}" if separator and len(tail) in (1, 2) else text.replace(",", "")
