"""The Dagster webserver loads workspace.yaml and shows the assets, partitions and runs."""

from __future__ import annotations

import sys

import httpx

from tests.conftest import REPO, World
from tests.servers import free_port, running

QUERY = """
{
  workspaceOrError { ... on Workspace { locationEntries { name } } }
  assetNodes { assetKey { path } partitionKeys }
  runsOrError { ... on Runs { results { runId status tags { key value } } } }
}
"""


def test_dagster_webserver_shows_the_assets_and_the_sensor_run(world: World) -> None:
    port = free_port()
    command = [sys.executable, "-m", "dagster_webserver", "-w", str(REPO / "workspace.yaml"),
               "-h", "127.0.0.1", "-p", str(port)]
    env = {"DAGSTER_HOME": str(world.settings.dagster_home),
           "CHRONOS_DATA_DIR": str(world.settings.data_dir)}
    base = f"http://127.0.0.1:{port}"
    with running(command, env, f"{base}/server_info", timeout_s=120):
        reply = httpx.post(f"{base}/graphql", json={"query": QUERY}, timeout=60).json()
    assert "errors" not in reply, reply["errors"]
    data = reply["data"]
    assert [e["name"] for e in data["workspaceOrError"]["locationEntries"]] == ["chronos"]
    assets = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
    assert assets == {"video", "transcript", "chunks", "embeddings", "playback",
                      "ledger_compaction", "vector_maintenance", "reembedding_estimate"}
    # Every per-video asset has the lecture's partition (the maintenance ones are not per video).
    assert all(world.video_id in n["partitionKeys"] for n in data["assetNodes"]
               if n["assetKey"]["path"] not in (["ledger_compaction"], ["vector_maintenance"],
                                                ["reembedding_estimate"]))
    runs = data["runsOrError"]["results"]
    run_keys = {t["value"] for r in runs for t in r["tags"] if t["key"] == "dagster/run_key"}
    assert world.video_id in run_keys
    assert any(r["status"] == "SUCCESS" for r in runs)
