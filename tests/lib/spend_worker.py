"""A process that runs one creator's paid embedding steps on command, for the concurrency tests.

``python -m tests.lib.spend_worker CATALOG_URL LEDGER_DIR BASE_URL CREATOR`` prints ``ready``,
then reads commands from stdin: ``try`` reserves one step's expected cost and prints
``held`` or ``refused``; ``finish`` makes the held step's request to the (loopback) provider,
records it on the ledger, settles, and prints ``done``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chronos_pipeline.lib.budgets import Budgets, Reservation
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.errors import BudgetExceededError
from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.pricing import PriceTable
from chronos_pipeline.lib.providers.openai_embedder import OpenAIEmbedder

TEXT = "momentum " * 1000


def embedder(base_url: str) -> OpenAIEmbedder:
    return OpenAIEmbedder(api_key="sk-test", base_url=f"{base_url}/v1", max_retries=0)


def main(argv: list[str]) -> None:
    url, ledger_dir, base_url, creator = argv
    catalog = Catalog(url, migrate_schema=False)
    ledger = Ledger(Path(ledger_dir), PriceTable.load(), totals=LedgerTotals(catalog))
    budgets = Budgets(catalog, ledger)
    provider = embedder(base_url)
    print("ready", flush=True)
    held: Reservation | None = None
    for line in sys.stdin:
        command = line.strip()
        if command == "try":
            try:
                held = budgets.reserve(creator, [provider.expected_usage([TEXT])],
                                       stage="embed")
                print("held", flush=True)
            except BudgetExceededError:
                held = None
                print("refused", flush=True)
        elif command == "finish":
            if held is not None:
                with held:
                    _vectors, usage = provider.embed([TEXT])
                    ledger.record(usage, creator_id=creator, stage="embed")
            held = None
            print("done", flush=True)
    catalog.close()


if __name__ == "__main__":
    main(sys.argv[1:])
