"""The price table: versioned, dated prices loaded from ``price_table.json``.

A price is looked up by provider, model and unit in the newest version in force on the
day the event happened. A model with no price is a ``PricingError`` that names it, never a
silent $0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from chronos_pipeline.lib.errors import PricingError

DEFAULT_TABLE = Path(__file__).with_name("price_table.json")


@dataclass(frozen=True)
class Price:
    version: str
    usd_per_unit: Decimal


@dataclass(frozen=True)
class _Version:
    version: str
    effective_from: date
    prices: dict[tuple[str, str, str], Decimal]


class PriceTable:
    def __init__(self, versions: list[_Version]) -> None:
        if not versions:
            raise PricingError("the price table has no versions")
        self._versions = sorted(versions, key=lambda v: v.effective_from)

    @classmethod
    def load(cls, path: Path = DEFAULT_TABLE) -> PriceTable:
        raw: dict[str, Any] = json.loads(path.read_text())
        versions = []
        for entry in raw["versions"]:
            prices = {
                (p["provider"], p["model"], p["unit"]): Decimal(p["usd"]) / Decimal(p["per"])
                for p in entry["prices"]
            }
            versions.append(
                _Version(entry["version"], date.fromisoformat(entry["effective_from"]), prices)
            )
        return cls(versions)

    def in_force(self, when: datetime | date) -> _Version:
        day = when.date() if isinstance(when, datetime) else when
        candidates = [v for v in self._versions if v.effective_from <= day]
        # Events before the first table are priced by the first one.
        return candidates[-1] if candidates else self._versions[0]

    def providers_for(self, model: str, unit: str, when: datetime | date) -> list[str]:
        """Providers that have a price for ``model`` in ``unit`` in the table in force."""
        version = self.in_force(when)
        return sorted({p for (p, m, u) in version.prices if m == model and u == unit})

    def price(self, provider: str, model: str, unit: str, when: datetime | date) -> Price:
        version = self.in_force(when)
        try:
            return Price(version.version, version.prices[(provider, model, unit)])
        except KeyError:
            raise PricingError(
                f"no price for model {model!r} of provider {provider!r} (unit {unit}) in price "
                f"table version {version.version}; add it to price_table.json"
            ) from None
