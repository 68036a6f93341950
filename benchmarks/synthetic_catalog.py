"""A synthetic product catalog with realistic titles/brands/categories and clustered vectors.

Used only by benchmarks: vectors are drawn around one centre per product type (plus a brand
offset), so approximate indexes behave as on real embeddings (random vectors make HNSW look
broken). Deterministic for a seed.
"""

from __future__ import annotations

import json
import random

import numpy as np

from rex_search.catalog.schema import Product

TYPES = {
    "Clothing, Shoes & Jewelry": ["running shoe", "trail running shoe", "hiking boot", "sandal",
                                  "rain jacket", "fleece jacket", "yoga pants", "t-shirt",
                                  "wool socks", "baseball cap", "leather belt", "backpack"],
    "Electronics": ["usb c charger", "wireless earbuds", "bluetooth speaker", "laptop sleeve",
                    "hdmi cable", "power bank", "phone case", "screen protector", "webcam",
                    "mechanical keyboard", "wireless mouse", "monitor stand"],
    "Home & Kitchen": ["cast iron skillet", "chef knife", "cutting board", "coffee grinder",
                       "french press", "sofa cover", "throw pillow", "bath towel", "bed sheet set",
                       "shower curtain", "storage bin", "desk lamp"],
    "Tools & Home Improvement": ["cordless drill", "screwdriver set", "tape measure", "led bulb",
                                 "extension cord", "work gloves", "tool bag", "stud finder"],
    "Sports & Outdoors": ["yoga mat", "water bottle", "camping tent", "sleeping bag",
                          "dumbbell set", "resistance bands", "bike light", "hiking poles"],
}
BRANDS = [f"{a}{b}" for a in ("Nor", "Vel", "Kai", "Zen", "Ori", "Tal", "Bra", "Lum", "Quo", "Sy")
          for b in ("dex", "ora", "tek", "wave", "line", "ford", "nix", "loom", "peak", "core")]
BRANDS += ["Nike", "Adidas", "Apple", "Anker", "Samsung", "Sony", "Dell", "HP", "Lodge", "Bosch"]
ADJECTIVES = ["lightweight", "durable", "waterproof", "premium", "compact", "ergonomic",
              "breathable", "heavy duty", "portable", "classic", "slim", "non-slip"]
COLORS = ["black", "white", "navy", "grey", "red", "olive", "blue", "beige"]
SIZES = ["small", "medium", "large", "13 inch", "15.6 inch", "16 inch", "2 pack", "10 ft"]


def product_types() -> list[tuple[str, str]]:
    return [(cat, t) for cat, types in TYPES.items() for t in types]


def generate(n: int, dim: int = 384, seed: int = 0) -> tuple[list[dict], np.ndarray, list[str]]:
    """Return ``n`` catalog rows (Amazebay columns), their unit vectors, and each row's type."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    types = product_types()
    centres = nrng.normal(size=(len(types), dim)).astype(np.float32)
    brand_offsets = nrng.normal(scale=0.3, size=(len(BRANDS), dim)).astype(np.float32)
    rows, vectors, kinds = [], np.empty((n, dim), dtype=np.float32), []
    for i in range(n):
        t = rng.randrange(len(types))
        b = rng.randrange(len(BRANDS))
        category, kind = types[t]
        color, size, adj = rng.choice(COLORS), rng.choice(SIZES), rng.choice(ADJECTIVES)
        brand = BRANDS[b]
        rows.append({
            "parent_asin": f"S{i:09d}",
            "title": f"{brand} {adj.title()} {kind.title()}, {color.title()}, {size}",
            "main_category": category,
            "categories": [category, kind.split()[-1].title() + "s"],
            "features": [f"{adj.capitalize()} design", f"Color: {color}", f"Size: {size}"],
            "description": [f"A {adj} {kind} by {brand}. Great for everyday use."],
            "price": f"{rng.uniform(5, 300):.2f}",
            "store": brand,
            "details": json.dumps({"Brand": brand, "Color": color.title()}),
        })
        v = centres[t] + brand_offsets[b] + nrng.normal(scale=0.5, size=dim)
        vectors[i] = v / np.linalg.norm(v)
        kinds.append(kind)
    return rows, vectors, kinds


def as_products(rows: list[dict]) -> list[Product]:
    from rex_search.catalog.reader import parse_row

    return [parse_row(r) for r in rows]
