"""The OpenAPI document tells the truth: schemathesis fuzzes a real `chronos serve` (on
loopback only) and every response — errors included — has a documented status, content
type and body shape, and none is a server error."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from chronos_pipeline.lib.services import Services
from tests.conftest import make_settings
from tests.servers import free_port, running

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")
# Per operation and phase; with all four phases (examples, coverage, fuzzing, stateful) this
# makes ~1,800 requests and takes about a minute on two cores.
MAX_EXAMPLES = 40
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def _check_results(report: Path) -> tuple[collections.Counter[tuple[str, str]], list[str]]:
    """(check name, status) counts over every case, and the messages of the failures."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    failures: list[str] = []
    for line in report.read_text().splitlines():
        event: dict[str, Any] = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished["recorder"]
        for checks in recorder.get("checks", {}).values():
            for check in checks:
                counts[(check["name"], check["status"])] += 1
                if check["status"] == "failure":
                    failure = check["failure_info"]["failure"]
                    failures.append(f"{recorder['label']}: {check['name']}: "
                                    f"{failure['message'][:600]}")
    return counts, failures


def test_every_response_matches_the_openapi_document(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = Services(make_settings(data_dir))
    try:
        _creator, api_key = services.catalog.create_creator("Fuzzer")
    finally:
        services.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "chronos_pipeline.cli", "serve", "--port", str(port)]
    report = tmp_path / "events.ndjson"
    with running(serve, {"CHRONOS_DATA_DIR": str(data_dir)}, f"{base}/health"):
        # The raw-body upload routes are fuzzed too: random bytes are refused as 415/422,
        # which is what their documents say.
        run = subprocess.run(
            [SCHEMATHESIS, "run", f"{base}/schema/openapi.json",
             "--header", f"Authorization: Bearer {api_key}",
             "--checks", ",".join(CHECKS), "--max-examples", str(MAX_EXAMPLES),
             # One worker: hypothesis's lambda-source cache is not safe across threads on
             # Python 3.11 (a rare "AST constructor recursion depth mismatch").
             "--workers", "1", "--seed", "20261126", "--generation-database", "none",
             "--max-redirects", "0", "--no-color",
             # The first question loads the embedding model: on a busy machine that can
             # outlast schemathesis' 10 s default (a "Network Error", not a finding).
             "--request-timeout", "90",
             "--report", "ndjson", "--report-ndjson-path", str(report)],
            cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
        )
    assert report.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    counts, failures = _check_results(report)
    assert failures == [], "\n\n".join(failures[:20])
    assert {name for name, _ in counts} == set(CHECKS)
    assert counts[("not_a_server_error", "success")] > 500, counts
    assert run.returncode == 0, run.stdout[-5000:]


def test_document_states_errors_as_sent_a_public_health_and_a_streamed_chat(
    tmp_path: Path
) -> None:
    from chronos_api.app import create_app

    services = Services(make_settings(tmp_path / "data"))
    try:
        document = create_app(services=services).openapi_schema.to_schema()
    finally:
        services.close()
    paths = document["paths"]
    assert paths["/health"]["get"]["security"] == []
    error = document["components"]["schemas"]["ErrorOut"]
    assert set(error["properties"]) == {"error", "detail", "offset"}
    assert sorted(error["required"]) == ["detail", "error"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            # /v1 speaks OpenAI's wire format, errors included.
            shape = "ErrorResponse" if path.startswith("/v1/") else "ErrorOut"
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}, \
                        (method, path, status)
    chat = paths["/chat"]["post"]["responses"]
    assert list(chat["200"]["content"]) == ["text/event-stream"]
    assert {"402", "404", "422"} <= set(chat)
    answer = paths["/chat/answer"]["post"]["responses"]["200"]["content"]
    assert list(answer) == ["application/json"]
    video_id = paths["/videos/{video_id}"]["get"]["parameters"][0]["schema"]
    assert video_id["pattern"] == "^vd_[0-9a-f]{16}$"
