"""A failure after an SSE stream has started reaches the client as an ``error`` event."""

from __future__ import annotations

import json
from pathlib import Path

from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.lib.pricing import DEFAULT_TABLE, PriceTable
from chronos_pipeline.lib.services import Services
from tests.api.test_chat import parse_sse
from tests.conftest import make_settings


def test_unpriced_chat_model_fails_mid_stream_with_an_error_event(tmp_path: Path) -> None:
    table = json.loads(DEFAULT_TABLE.read_text())
    for version in table["versions"]:
        version["prices"] = [p for p in version["prices"]
                             if p["model"] != "chronos-extractive-v1"]
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table))
    # No lecture here: with the coverage check on, the answer would be "not covered" and
    # the unpriced model would never run.
    services = Services(make_settings(tmp_path / "data", coverage_min=-1.0))
    services.prices = PriceTable.load(path)
    _, key = services.catalog.create_creator("Ada")
    with TestClient(create_app(services=services)) as client:
        response = client.post("/chat", json={"question": "What is RSI?"},
                               headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "answer" and names[-1] == "error" and "done" not in names
    error = events[-1][1]
    assert error["error"] == "PricingError" and "chronos-extractive-v1" in error["detail"]
    # The question's embedding was billed before the failure; nothing after it.
    _, rows = services.ledger.query("SELECT stage, count(*) FROM cost_records GROUP BY stage")
    assert dict(rows) == {"query-embed": 1}
    services.close()
