"""Inventory feeds share the catalog's row reader and field parsers: one bad row is that row's
error in every format, and a price means what it means in a catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rex_search.catalog.inventory import read_inventory
from rex_search.catalog.reader import read_catalog
from rex_search.errors import CatalogError


def test_a_bad_jsonl_line_is_one_rejected_row(tmp_path: Path):
    feed = tmp_path / "stock.jsonl"
    feed.write_text(json.dumps({"parent_asin": "A1", "in_stock": True}) + "\n"
                    + '{"parent_asin": "A2", "in_stock": tru\n'
                    + json.dumps({"parent_asin": "A3", "quantity": 4}) + "\n")
    records, rejected = read_inventory(feed)
    assert [(r.parent_asin, r.in_stock, r.quantity) for r in records] == [
        ("A1", True, None), ("A3", True, 4)]
    assert [(r.row, r.field) for r in rejected] == [(2, "record")]
    assert "not a JSON object" in rejected[0].reason


def test_an_absurd_quantity_is_one_rejected_row_and_the_rest_of_the_feed_applies(
        tmp_path: Path):
    feed = tmp_path / "stock.csv"
    feed.write_text("parent_asin,quantity\nA1,1e300\nA2,99999999999999999999999\nA3,5\n")
    records, rejected = read_inventory(feed)
    assert [(r.parent_asin, r.quantity) for r in records] == [("A3", 5)]
    assert [(r.row, r.field) for r in rejected] == [(1, "quantity"), (2, "quantity")]
    assert "expected a number between 0 and 1e+09" in rejected[0].reason


@pytest.mark.parametrize(("price", "expected"), [("12.50", 12.5), ('"$1,299.00"', 1299.0),
                                                 ("nan", None), ("", None)])
def test_prices_parse_as_in_a_catalog(tmp_path: Path, price: str, expected: float | None):
    feed = tmp_path / "stock.csv"
    feed.write_text(f"parent_asin,in_stock,price\nA1,true,{price}\n")
    [record], rejected = read_inventory(feed)
    assert record.price == expected and rejected == []
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(f"parent_asin,title,price\nA1,Mug,{price}\n")
    [batch] = read_catalog(catalog)
    assert batch.products[0].price == expected


@pytest.mark.parametrize("price", ["inf", "-3", "cheap", "1e308"])
def test_impossible_prices_are_rejected_rows(tmp_path: Path, price: str):
    feed = tmp_path / "stock.csv"
    feed.write_text(f"parent_asin,in_stock,price\nA1,true,{price}\nA2,false,\n")
    records, rejected = read_inventory(feed)
    assert [r.parent_asin for r in records] == ["A2"]
    assert [(r.row, r.parent_asin, r.field) for r in rejected] == [(1, "A1", "price")]


def test_a_feed_without_parent_asin_is_refused_whole(tmp_path: Path):
    feed = tmp_path / "stock.csv"
    feed.write_text("sku,in_stock\nA1,true\n")
    with pytest.raises(CatalogError, match="stock.csv lacks required column"):
        read_inventory(feed)
