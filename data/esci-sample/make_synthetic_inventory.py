"""Generate the SYNTHETIC inventory feed used by the demo (the ESCI catalog has no stock data).

    python data/esci-sample/make_synthetic_inventory.py

Seeded: about 20% of products out of stock, quantities random. Not real data.
"""

import csv
import random
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
rng = random.Random(2026)
ids = pq.read_table(HERE / "catalog.parquet", columns=["parent_asin"])["parent_asin"].to_pylist()
with (HERE / "inventory.synthetic.csv").open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["parent_asin", "in_stock", "quantity"])
    for asin in ids:
        quantity = 0 if rng.random() < 0.2 else rng.randint(1, 250)
        writer.writerow([asin, "true" if quantity else "false", quantity])
