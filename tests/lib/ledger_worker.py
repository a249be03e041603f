"""A process that appends to or compacts a ledger, for the kill -9 tests.

``python -m tests.lib.ledger_worker append DATA_DIR N CREATOR`` prints each call's record ids
once its append has returned; ``... compact DATA_DIR`` compacts in a loop until killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.ledger_compaction import compact_ledger
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.pricing import PriceTable

GRACE_S = 5.0


def open_ledger(data: Path) -> Ledger:
    catalog = Catalog(f"sqlite:///{data / 'catalog.sqlite3'}", migrate_schema=False)
    return Ledger(data / "ledger", PriceTable.load(), totals=LedgerTotals(catalog))


def main(argv: list[str]) -> None:
    mode, data = argv[0], Path(argv[1])
    ledger = open_ledger(data)
    print("ready", flush=True)
    if mode == "append":
        count, creator = int(argv[2]), argv[3]
        for n in range(count):
            records = ledger.record(
                Usage("anthropic", "claude-haiku-4-5", {"input_token": 100 + n, "output_token": 7}),
                creator_id=creator, stage="chat", student_id=f"st_{n % 3:016x}")
            print(" ".join(r.record_id for r in records), flush=True)
    elif mode == "compact":
        while True:
            compact_ledger(ledger, grace_s=GRACE_S, max_parts=2)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
