"""Write the example's raw feeds (already in raw/; run this only to remake them).

Hourly load and day-ahead price per region and month, the way the feeds
arrive: the grid operators of north and south export CSV (with the quirks
of real exports: a repeated hour when a meter retransmits, a missing price,
a negative load reading from a faulty meter), region west comes from an API
as one JSON document per month, in kW and with UTC timestamps.
Deterministic: the same files on every run.
"""

import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

YEARS = (2024, 2025)
CSV_REGIONS = {"north": 5200.0, "south": 3900.0}  # base load, MW
WEST_BASE = 2600.0


def hours(year: int, month: int):
    t = datetime(year, month, 1)
    while t.month == month:
        yield t
        t += timedelta(hours=1)


def load_and_price(rng: random.Random, t: datetime, base: float) -> tuple[float, float]:
    daily = 1 + 0.18 * math.sin((t.hour - 7) / 24 * 2 * math.pi)
    seasonal = 1 + 0.15 * math.cos((t.timetuple().tm_yday - 15) / 365 * 2 * math.pi)
    weekend = 0.9 if t.weekday() >= 5 else 1.0
    load = base * daily * seasonal * weekend * rng.uniform(0.95, 1.05)
    solar_noon = 1 if 10 <= t.hour <= 15 and t.month in (4, 5, 6, 7, 8) else 0
    price = 40 + 0.012 * load * daily - solar_noon * rng.uniform(0, 70) + rng.gauss(0, 6)
    return load, price


def write_csv(path: Path, rng: random.Random, year: int, month: int, base: float) -> None:
    lines = ["timestamp,load_mw,price_eur_mwh"]
    for t in hours(year, month):
        load, price = load_and_price(rng, t, base)
        price_text = "" if rng.random() < 0.002 else f"{price:.2f}"
        if rng.random() < 0.001:
            load = -load
        lines.append(f"{t:%Y-%m-%d %H:%M},{load:.1f},{price_text}")
        if rng.random() < 0.003:
            lines.append(lines[-1])  # retransmitted
    path.write_text("\n".join(lines) + "\n")


def write_json(path: Path, rng: random.Random, year: int, month: int) -> None:
    readings = []
    for t in hours(year, month):
        load, price = load_and_price(rng, t, WEST_BASE)
        readings.append({"t": f"{t:%Y-%m-%dT%H:%M:%S}Z", "load_kw": round(load * 1000), "price": round(price, 2)})
    doc = {"region": "west", "unit": {"load": "kW", "price": "EUR/MWh"}, "readings": readings}
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def main() -> None:
    root = Path(__file__).resolve().parent.parent / "raw"
    rng = random.Random(2024)
    for year in YEARS:
        for month in range(1, 13):
            for region, base in CSV_REGIONS.items():
                path = root / region / f"{year}-{month:02d}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_csv(path, rng, year, month, base)
            path = root / "west" / f"{year}-{month:02d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, rng, year, month)


if __name__ == "__main__":
    main()
