"""Re-embedding as a Dagster backfill, launched the way the UI launches it (the webserver's
``launchPartitionBackfill`` mutation) and run by a real daemon: the engineer names the target
model in the run config; chat moves to it only when every lecture has it; a failed video
stays ready on its old vectors and says what failed."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chronos_pipeline.instance import prepare_dagster_home
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.costs import estimate_reembed, estimates_against_actual
from chronos_pipeline.lib.providers.local_embedder import MODEL_ID as LOCAL_MODEL
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.steps import load_chunks
from tests.conftest import REPO, ready_clip
from tests.loopback import Loopback, loopback
from tests.servers import dagster_daemon, free_port, running

TARGET = "text-embedding-3-small"

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
  }
}
"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def graphql(base: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables},
                       timeout=60).json()
    assert "errors" not in reply, reply
    data: dict[str, Any] = reply["data"]
    return data


def backfill(base: str, video_ids: list[str], model: str, estimate_id: str,
             timeout_s: float = 600) -> str:
    """Launch a re-embedding backfill of the ``embeddings`` asset over ``video_ids`` with
    the run config the estimate gives; wait for it to end; return its status."""
    config = {"model": model, "estimate_id": estimate_id}
    params = {
        "assetSelection": [{"path": ["embeddings"]}],
        "partitionNames": video_ids,
        "runConfigData": {"ops": {"embeddings": {"config": config}}},
    }
    launched = graphql(base, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + timeout_s
    while True:
        status = graphql(base, STATUS, {"id": launched["backfillId"]})
        state = status["partitionBackfillOrError"]["status"]
        if state in DONE:
            return str(state)
        assert time.monotonic() < deadline, f"backfill still {state} after {timeout_s} s"
        time.sleep(2)


def searched_model(services: Services, creator_id: str) -> str:
    embedder, _store = services.search_model(creator_id)
    return embedder.model_id


def asked_with(server: Loopback, services: Services, creator_id: str) -> bool:
    """Ask a question; whether its embedding went to the loopback (the OpenAI model)."""
    before = server.served("/v1/embeddings")
    answer = services.answering.answer(creator_id, "What should you ask your country?")
    assert answer.answer
    return server.served("/v1/embeddings") > before


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Loopback, dict[str, str]]]:
    """The loopback OpenAI server, and a deployment on the embedded SQLite storage or with
    the catalog and Dagster's storage on PostgreSQL."""
    with loopback() as server:
        values = {"CHRONOS_DATA_DIR": str(tmp_path / "data"), "OPENAI_API_KEY": "sk-test",
                  "CHRONOS_OPENAI_BASE_URL": f"{server.base_url}/v1",
                  "CHRONOS_COVERAGE_MIN": "off"}
        if request.param == "postgres":
            url = request.getfixturevalue("pg_url")
            values.update(CHRONOS_DATABASE_URL=url, CHRONOS_DAGSTER_PG_URL=url)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        yield server, values


def test_a_backfill_with_a_chosen_model_moves_chat_only_when_every_lecture_has_it(
    env: tuple[Loopback, dict[str, str]], tmp_path: Path
) -> None:
    server, values = env
    services = Services(Settings.from_env())
    creator, _key = services.catalog.create_creator("Re-embedder")
    videos = []
    for n in range(3):
        (tmp_path / f"clip{n}").mkdir()
        videos.append(ready_clip(services, creator.id, tmp_path / f"clip{n}"))
    assert server.served("/v1/embeddings") == 0  # ingested with the local model
    home = prepare_dagster_home(services.settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    dagster_env = {**values, "DAGSTER_HOME": str(home)}
    webserver = [sys.executable, "-m", "dagster_webserver", "-w", str(REPO / "workspace.yaml"),
                 "-h", "127.0.0.1", "-p", str(port)]
    with running(webserver, dagster_env, f"{base}/server_info", timeout_s=120), \
            dagster_daemon(dagster_env, tmp_path / "daemon.log"):
        # The first embedding request of the backfill is refused: one video fails.
        estimate = estimate_reembed(services.ledger, services.catalog, services.storage,
                                    TARGET, creator_id=creator.id, with_sentences=True)
        assert estimate.videos == 3 and estimate.counted_tokens > 0
        server.faults["/v1/embeddings"].append("401")
        assert backfill(base, videos, TARGET, estimate.estimate_id) != "COMPLETED_SUCCESS"
        lectures = [services.catalog.find_video(v) for v in videos]
        assert all(v.status is VideoStatus.READY for v in lectures)
        noticed = [v for v in lectures if v.notice]
        assert len(noticed) == 1 and "embedding failed" in (noticed[0].notice or "")
        # Two of three have the new model's vectors; chat still searches the old model.
        assert searched_model(services, creator.id) == LOCAL_MODEL
        assert not asked_with(server, services, creator.id)
        # The backfill launched again: the failed video is embedded, the two done ones are
        # not paid for twice, and chat switches.
        assert backfill(base, videos, TARGET, estimate.estimate_id) == "COMPLETED_SUCCESS"
        billed = sum(bill.get("input_token", 0) for bill in server.billed)
    assert searched_model(services, creator.id) == TARGET
    assert asked_with(server, services, creator.id)
    new_store = services.vectors_for(services.embedder_for(TARGET))
    for video_id in videos:
        video = services.catalog.find_video(video_id)
        assert video.status is VideoStatus.READY and video.notice is None
        assert new_store.count(video_id) == len(load_chunks(services, video))
        _, runs = services.ledger.query(
            "SELECT count(DISTINCT run_id) FROM cost_records WHERE stage = 'embed' "
            "AND model = ? AND video_id = ?", [TARGET, video_id])
        assert runs == [(1,)], video_id  # paid once, in one run
    # The estimate is paired with the backfills' own runs: its actual is what they billed.
    [paired] = [row for row in estimates_against_actual(services.ledger).as_dicts()
                if row["estimate_id"] == estimate.estimate_id]
    assert paired["paired_by"] == "run" and paired["runs"] == 2
    assert paired["actual_tokens"] == billed
    services.close()
