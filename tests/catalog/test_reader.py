from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rex_search.catalog.reader import read_catalog
from rex_search.catalog.schema import brand_key
from rex_search.errors import CatalogError
from tests.conftest import SAMPLE_CATALOG

GOOD = {
    "parent_asin": "B0GOOD0001", "title": "Trail Running Shoe", "main_category": "Shoes",
    "categories": ["Shoes", "Running"], "features": ["Breathable mesh"],
    "description": ["Light and fast."], "price": "$1,299.99", "store": "Store Name",
    "details": json.dumps({"Brand": "Acme", "Color": "Blue"}), "average_rating": 4.5,
    "rating_number": 12,
}


def read_all(path: Path, batch_size: int = 1024):
    products, rejected = [], []
    for batch in read_catalog(path, batch_size=batch_size):
        products += batch.products
        rejected += batch.rejected
    return products, rejected


def test_reads_the_bundled_sample_without_rejections():
    products, rejected = read_all(SAMPLE_CATALOG)
    assert len(products) == 6764
    assert rejected == []
    first = products[0]
    assert first.parent_asin == "006287716X"
    assert first.brand == "Harper Voyager"
    assert first.price == 32.90


def test_good_row_fields(tmp_path: Path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD]), path)
    [product], rejected = read_all(path)
    assert rejected == []
    assert product.brand == "Acme"  # details.Brand wins over store
    assert product.store == "Store Name"
    assert product.price == 1299.99
    assert product.categories == ("Shoes", "Running")
    assert product.description == "Light and fast."
    assert product.color == "Blue"
    assert product.rating_number == 12


BAD_ROWS = [
    ({"parent_asin": None}, "parent_asin", "expected a non-empty string, got null"),
    ({"parent_asin": "  "}, "parent_asin", "expected a non-empty string, got an empty string"),
    ({"title": ""}, "title", "expected a non-empty string, got an empty string"),
    ({"price": "$1,299.99 - $1,499.00"}, "price",
     "expected a single price like '12.99', got '$1,299.99 - $1,499.00'"),
    ({"price": "-5"}, "price", "expected a single price like '12.99', got '-5'"),
    ({"details": "{Brand: Acme"}, "details", "expected a JSON object string"),
    ({"details": "[1, 2]"}, "details", "expected a JSON object, got list"),
    ({"rating_number": "many"}, "rating_number", "expected a number, got 'many'"),
    ({"categories": "[\"a\", 3]"}, "categories", "expected a list of strings, got list"),
]


@pytest.mark.parametrize(("change", "field", "reason"), BAD_ROWS)
def test_each_bad_row_kind_is_rejected_with_row_and_field(tmp_path: Path, change, field, reason):
    rows = [dict(GOOD, parent_asin="B0GOOD0000"), {**GOOD, **change}, dict(GOOD)]
    path = tmp_path / "c.jsonl"  # JSONL keeps per-row types, so each bad kind is expressible
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    products, rejected = read_all(path)
    assert [p.parent_asin for p in products] == ["B0GOOD0000", "B0GOOD0001"]
    assert len(rejected) == 1
    bad = rejected[0]
    assert (bad.row, bad.field) == (2, field)
    assert bad.reason.startswith(reason)
    assert str(bad).startswith("row 2")


def test_wrong_type_in_a_parquet_column_is_a_row_rejection(tmp_path: Path):
    table = pa.table({"parent_asin": ["A1", "A2"], "title": ["ok", "fine"], "price": [3.5, None],
                      "rating_number": [1, 2], "store": ["s", "t"]})
    path = tmp_path / "c.parquet"
    pq.write_table(table, path)
    products, rejected = read_all(path)
    assert [p.price for p in products] == [3.5, None]
    assert rejected == []


def test_csv_with_lists_as_json_and_bad_price(tmp_path: Path):
    path = tmp_path / "c.csv"
    path.write_text(
        "parent_asin,title,categories,price,details\n"
        'A1,Shoe,"[""Shoes"", ""Running""]",12.50,"{""Brand"": ""Nike""}"\n'
        'A2,Bag,Bags,"$1,299.99 - $1,499.00",\n'
        "A3,Lamp,,,\n"
    )
    products, rejected = read_all(path)
    assert [(p.parent_asin, p.categories, p.price, p.brand) for p in products] == [
        ("A1", ("Shoes", "Running"), 12.5, "Nike"), ("A3", (), None, None)]
    assert [(r.row, r.parent_asin, r.field) for r in rejected] == [(2, "A2", "price")]


def test_european_and_currency_marked_prices_are_read_not_rejected(tmp_path: Path):
    path = tmp_path / "c.csv"
    path.write_text("parent_asin,title,price\n"
                    "A1,Mug,\"€12,50\"\n"
                    "A2,Sofa,\"1.299,99 €\"\n"
                    "A3,Lamp,\"$1,299.99\"\n"
                    "A4,Pen,£3\n"
                    "A5,Desk,\"1 049,00 EUR\"\n"
                    "A6,Chair,\"1,299\"\n")
    products, rejected = read_all(path)
    assert [(p.parent_asin, p.price) for p in products] == [
        ("A1", 12.5), ("A2", 1299.99), ("A3", 1299.99), ("A4", 3.0), ("A5", 1049.0),
        ("A6", 1299.0)]
    assert rejected == []


def test_jsonl_line_that_is_not_json_is_rejected_not_fatal(tmp_path: Path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"parent_asin": "A1", "title": "x"}\nnot json\n[1]\n')
    products, rejected = read_all(path)
    assert [p.parent_asin for p in products] == ["A1"]
    assert [(r.row, r.field) for r in rejected] == [(2, "record"), (3, "record")]
    assert rejected[1].reason == "expected a JSON object, got list"


def test_missing_required_column_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"parent_asin": ["A1"], "name": ["x"]}), path)
    with pytest.raises(CatalogError, match=re.escape("c.parquet lacks required column(s) title; "
                                                     "found columns: parent_asin, name")):
        read_all(path)


def test_unknown_format_and_missing_file(tmp_path: Path):
    with pytest.raises(CatalogError, match="catalog file not found"):
        read_all(tmp_path / "nope.parquet")
    odd = tmp_path / "c.xlsx"
    odd.write_text("x")
    with pytest.raises(CatalogError, match=re.escape("unknown format '.xlsx'; expected one of")):
        read_all(odd)


def test_large_file_is_streamed_in_bounded_batches(tmp_path: Path):
    rows = 200_000
    table = pa.table({
        "parent_asin": [f"A{i:08d}" for i in range(rows)],
        "title": [f"Product number {i} with a reasonably long title" for i in range(rows)],
        "description": [["x" * 200]] * rows,
    })
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=10_000)
    whole = table.nbytes
    del table
    baseline = pa.total_allocated_bytes()
    peak, seen, sizes = 0, 0, set()
    for batch in read_catalog(path, batch_size=5_000):
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        seen += len(batch.products)
        sizes.add(len(batch.products))
    assert seen == rows
    assert max(sizes) <= 5_000
    assert peak < whole / 5, f"reader held {peak} bytes of Arrow memory for a {whole}-byte table"


def test_brand_key_is_case_and_punctuation_insensitive():
    assert brand_key("HP Inc.") == "hpinc"
    assert brand_key("h.p.") == brand_key("HP") == "hp"
    assert brand_key(None) == ""


def test_images_give_the_first_http_url_and_never_reject_a_product(tmp_path):
    import json as _json

    from rex_search.catalog.reader import read_catalog as _read

    rows = [
        {"parent_asin": "A1", "title": "Shoe", "images": [
            {"hi_res": None, "large": "https://img.example/a1.jpg", "thumb": None}]},
        {"parent_asin": "A2", "title": "Bag", "images": '["https://img.example/a2.jpg"]'},
        {"parent_asin": "A3", "title": "Sock", "images": [{"large": "javascript:alert(1)"}]},
        {"parent_asin": "A4", "title": "Hat", "images": 7},
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(_json.dumps(r) for r in rows))
    products = {p.parent_asin: p for b in _read(path) for p in b.products}
    assert [products[a].image for a in ("A1", "A2", "A3", "A4")] == [
        "https://img.example/a1.jpg", "https://img.example/a2.jpg", None, None]


def test_one_bad_block_in_a_csv_loses_only_its_own_rows(tmp_path: Path):
    """150 valid rows of ~10 KB, an invalid-UTF-8 row, a 5-column row and a valid row: every
    valid row is read (Arrow's CSV reader stopped at the first bad block and lost 47)."""
    path = tmp_path / "c.csv"
    body = "soft cotton " * 850
    lines = ["parent_asin,title,description"]
    lines += [f"A{i},Shirt {i},{body}" for i in range(150)]
    with path.open("wb") as out:
        out.write(("\n".join(lines) + "\n").encode())
        out.write(b"B1,Caf\xe9 mug,bad bytes\n")
        out.write(b"B2,Ragged,a,b,c\n")
        out.write(b"B3,Last mug,fine\n")
    products, rejected = read_all(path)
    assert len(products) == 151 and products[-1].parent_asin == "B3"
    assert [(r.row, r.field) for r in rejected] == [(151, "record"), (152, "record")]
    assert "not valid UTF-8 at line 152 (column title)" in rejected[0].reason
    assert "malformed CSV at line 153 (expected 3 columns, found 5)" in rejected[1].reason
