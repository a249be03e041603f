"""The vector_maintenance asset compacts the chunk tables and keeps their indexes."""

from __future__ import annotations

import dagster as dg
import lancedb
import numpy as np

from chronos_pipeline.assets.vector_maintenance import vector_maintenance
from chronos_pipeline.lib.chunking import Chunk, Sentence
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.vector_maintenance import SCALAR_INDEXES
from chronos_pipeline.lib.vectors import VectorStore
from chronos_pipeline.resources.data import ChronosData


def test_vector_maintenance_compacts_the_tables_and_reports_it(settings: Settings) -> None:
    store = VectorStore(settings.lancedb_dir, "test/model-8", 8)
    rng = np.random.default_rng(3)
    for n in range(1, 6):
        vectors = rng.standard_normal((4, 8)).astype(np.float32)
        store.replace_video(
            creator_id="cr_00000000000000aa", video_id=f"vd_000000000000000{n}",
            course_id=None, vectors=vectors,
            chunks=[Chunk(i, i, i + 1.0, "x", [Sentence(i, i + 1.0, "x")]) for i in range(4)])

    result = dg.materialize(
        [vector_maintenance],
        resources={"data": ChronosData(data_dir=str(settings.data_dir))},
    )

    assert result.success
    [materialization] = result.asset_materializations_for_node("vector_maintenance")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["tables"] == 1 and metadata["rows"] == 20
    assert metadata["fragments_before"] == 5 and metadata["fragments_after"] == 1
    table = lancedb.connect(str(settings.lancedb_dir)).open_table(store.name)
    assert table.count_rows() == 20
    assert {c for i in table.list_indices() for c in i.columns} >= set(SCALAR_INDEXES)
    assert not any(i.num_unindexed_rows for i in table.list_indices())
