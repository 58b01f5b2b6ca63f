"""Total sales per region for one year; `snakemake` is set by flow (and by Snakemake)."""

import csv
from collections import defaultdict

totals = defaultdict(float)
with open(snakemake.input[0], newline="") as f:  # noqa: F821
    for row in csv.DictReader(f):
        totals[row["region"]] += float(row["amount"])

with open(snakemake.output[0], "w") as out:  # noqa: F821
    for region in sorted(totals):
        out.write(f"{snakemake.wildcards.year}\t{region}\t{totals[region]:.2f}\t{snakemake.params.currency}\n")  # noqa: F821
