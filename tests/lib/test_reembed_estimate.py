"""Re-embedding estimates: the texts the embeddings step sends, counted by the target model's
own tokenizer (shipped, never downloaded), calibrated by earlier estimated runs, and each
estimate paired with the runs that carried it out."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chronos_pipeline.lib import costs
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.chunking import CHUNKS_FILE, Chunk, Sentence
from chronos_pipeline.lib.errors import NotFoundError, ValidationError
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.pricing import DEFAULT_TABLE, PriceTable
from chronos_pipeline.lib.sentence_vectors import texts_to_embed
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import embed_video, embeds_sentences, load_chunks
from chronos_pipeline.lib.token_counts import (
    CL100K_FILE,
    CL100K_SHA256,
    LOCAL_MODEL,
    cl100k_base,
    count_tokens,
)
from tests.conftest import REPO, SAMPLE_DIR, World, copy_data_dir, make_settings
from tests.loopback import loopback

SMALL = "text-embedding-3-small"


# Token counts ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "ids"), [
    # OpenAI's cookbook ("How to count tokens with tiktoken"), cl100k_base.
    ("hello world", [15339, 1917]),
    ("tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
    ("antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
    ("2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
    ("お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]),
])
def test_cl100k_gives_openais_published_tokens(text: str, ids: list[int]) -> None:
    assert cl100k_base().encode_ordinary(text) == ids
    for model in (SMALL, "text-embedding-3-large", "text-embedding-ada-002"):
        assert count_tokens(model, [text, text]) == 2 * len(ids)


def test_shipped_ranks_are_the_file_tiktoken_itself_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken
    import tiktoken_ext.openai_public as openai_public

    raw = gzip.decompress(CL100K_FILE.read_bytes())
    # The hash tiktoken checks OpenAI's download against: the shipped file is that file.
    assert CL100K_SHA256 in openai_public.cl100k_base.__code__.co_consts
    assert hashlib.sha256(raw).hexdigest() == CL100K_SHA256
    # Handed to tiktoken through its own cache (it checks that hash and finds the file, so
    # nothing is fetched), tiktoken's registry encoding tokenizes exactly as ours.
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(raw)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    theirs = tiktoken.get_encoding("cl100k_base")
    text = ((SAMPLE_DIR / "script.txt").read_text() + (REPO / "README.md").read_text()
            + "\n\n  tabs\tand  spaces  \r\n <|endoftext|> Größe 東京 ١٢٣٤ 12345678 ")
    assert cl100k_base().encode_ordinary(text) == theirs.encode_ordinary(text)
    assert len(theirs.encode_ordinary(text)) > 5000


def test_counting_tokens_downloads_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken-cache"
    dead = "http://127.0.0.1:9"  # any download through a proxy here fails at once
    env = {**os.environ, "PYTHONPATH": str(REPO), "TIKTOKEN_CACHE_DIR": str(cache),
           "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "https_proxy": dead, "http_proxy": dead,
           "TMPDIR": str(tmp_path)}
    code = ("from chronos_pipeline.lib.token_counts import count_tokens; "
            "print(count_tokens('text-embedding-3-small', ['hello world', 'tiktoken is great!']))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "8"
    assert not cache.exists() and not (tmp_path / "data-gym-cache").exists()


def test_an_embedding_model_without_a_tokenizer_is_named() -> None:
    with pytest.raises(ValidationError, match=r"'acme-embed-1'.*text-embedding-3-small"):
        count_tokens("acme-embed-1", ["hello"])


def test_the_local_count_is_what_the_local_embedder_bills() -> None:
    from chronos_pipeline.lib.providers.local_embedder import LocalEmbedder

    long = " ".join(["momentum"] * 400)  # past the model's 256 tokens: billed truncated
    texts = ["The relative strength index compares gains with losses.", long, "RSI"]
    _, usage = LocalEmbedder().embed(texts)
    assert count_tokens(LOCAL_MODEL, texts) == usage.quantities["input_token"]


# Estimates on disk chunks ------------------------------------------------------------------
def _chunks(*sentences: list[str]) -> list[Chunk]:
    return [Chunk(i, 10.0 * i, 10.0 * i + 9, " ".join(parts),
                  [Sentence(10.0 * i + j, 10.0 * i + j + 1, s) for j, s in enumerate(parts)])
            for i, parts in enumerate(sentences)]


def _ready_video(services: Services, creator_id: str, chunks: list[Chunk] | None,
                 course_id: str | None = None, status: VideoStatus = VideoStatus.READY) -> str:
    video = services.catalog.create_video(creator_id, "Lecture", course_id=course_id)
    services.catalog.set_status(video.id, status)
    if chunks is not None:
        services.storage.write_json(creator_id, video.id, CHUNKS_FILE,
                                    [c.to_json() for c in chunks])
    return video.id


LECTURE = _chunks(["RSI was introduced in 1978.", "It compares average gains with losses."],
                  ["It compares average gains with losses.", "Above 70 reads as overbought."])


def test_estimate_counts_each_ready_video_of_the_scope_with_the_models_tokenizer(
    services: Services, creator: tuple[str, str]
) -> None:
    creator_id, _ = creator
    course = services.catalog.create_course(creator_id, "Markets").id
    in_course = _ready_video(services, creator_id, LECTURE, course)
    elsewhere = _ready_video(services, creator_id, LECTURE[:1])
    _ready_video(services, creator_id, LECTURE, course, status=VideoStatus.EMBEDDING)
    no_chunks = _ready_video(services, creator_id, None, course)
    other_creator, _ = services.catalog.create_creator("Someone else")
    _ready_video(services, other_creator.id, LECTURE)

    estimate = costs.estimate_reembed(services.ledger, services.catalog, services.storage, SMALL,
                                      creator_id=creator_id, course_id=course,
                                      with_sentences=True)
    texts = texts_to_embed(LECTURE, with_sentences=True)
    # 2 chunks + 3 distinct sentences + 2 windows; the shared sentence is sent once.
    assert len(texts) == 7
    assert [(v.video_id, v.texts, v.counted_tokens) for v in estimate.per_video] == [
        (in_course, 7, count_tokens(SMALL, texts))]
    assert estimate.without_chunks == (no_chunks,)
    assert (estimate.provider, estimate.tokenizer, estimate.calibration) == (
        "openai", "tiktoken cl100k_base", 1.0)
    assert estimate.estimated_usd == Decimal(estimate.counted_tokens) * Decimal("0.02") / 10**6

    chunks_only = costs.estimate_reembed(services.ledger, services.catalog, services.storage,
                                         SMALL, creator_id=creator_id)
    assert {v.video_id: v.texts for v in chunks_only.per_video} == {in_course: 2, elsewhere: 1}
    everyone = costs.estimate_reembed(services.ledger, services.catalog, services.storage,
                                      SMALL)
    assert everyone.videos == 3

    with pytest.raises(NotFoundError):
        costs.estimate_reembed(services.ledger, services.catalog, services.storage, SMALL,
                               creator_id=other_creator.id, course_id=course)
    with pytest.raises(ValidationError, match="no price for embedding model 'nope-embed'"):
        costs.estimate_reembed(services.ledger, services.catalog, services.storage,
                               "nope-embed", creator_id=creator_id)


def test_a_priced_model_without_a_tokenizer_gets_no_estimate(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    table = json.loads(DEFAULT_TABLE.read_text())
    table["versions"][0]["prices"].append({"provider": "acme", "model": "acme-embed-1",
                                           "unit": "input_token", "usd": "0.05",
                                           "per": 1000000})
    (tmp_path / "prices.json").write_text(json.dumps(table))
    ledger = Ledger(tmp_path / "ledger", PriceTable.load(tmp_path / "prices.json"))
    with pytest.raises(ValidationError, match=r"no offline tokenizer .*'acme-embed-1'"):
        costs.estimate_reembed(ledger, services.catalog, services.storage, "acme-embed-1",
                               creator_id=creator[0])
    assert not ledger.layout.estimates_dir.exists()


def _bill(ledger: Ledger, creator_id: str, video_id: str, run_id: str, tokens: int) -> None:
    ledger.record(Usage("openai", SMALL, {"input_token": tokens}), creator_id=creator_id,
                  stage="embed", video_id=video_id, run_id=run_id)


def test_each_estimate_is_paired_with_its_own_runs_and_calibrates_the_next(
    services: Services, creator: tuple[str, str]
) -> None:
    creator_id, _ = creator
    first_video = _ready_video(services, creator_id, LECTURE)
    ledger = services.ledger

    def estimate() -> costs.Estimate:
        return costs.estimate_reembed(ledger, services.catalog, services.storage, SMALL,
                                      creator_id=creator_id)

    first = estimate()
    counted = first.counted_tokens
    costs.attach_run(ledger, first.estimate_id, "run-1", backfill_id="bf1")
    costs.attach_run(ledger, first.estimate_id, "run-1", backfill_id="bf1")  # idempotent
    _bill(ledger, creator_id, first_video, "run-1", round(counted * 1.2))
    _bill(ledger, creator_id, first_video, "ingest-run", 999)  # not this estimate's run

    second = estimate()  # calibrated by run-1: it billed 1.2 × what was counted
    assert second.calibration_videos == 1
    assert second.calibration == pytest.approx(round(counted * 1.2) / counted)
    assert second.tokens == pytest.approx(round(counted * 1.2))
    costs.attach_run(ledger, second.estimate_id, "run-2")
    _bill(ledger, creator_id, first_video, "run-2", round(counted * 1.2))
    pending = estimate()

    rows = {r["estimate_id"]: r for r in costs.estimates_against_actual(ledger).as_dicts()}
    assert rows[first.estimate_id]["actual_tokens"] == round(counted * 1.2)  # not run-2's
    assert (rows[first.estimate_id]["runs"], rows[first.estimate_id]["backfills"],
            rows[first.estimate_id]["paired_by"]) == (1, "bf1", "run")
    assert rows[first.estimate_id]["error_pct"] == pytest.approx(
        100 * (counted - round(counted * 1.2)) / round(counted * 1.2), abs=0.01)
    assert rows[second.estimate_id]["actual_tokens"] == round(counted * 1.2)
    assert rows[second.estimate_id]["error_pct"] == pytest.approx(0, abs=0.01)
    assert rows[pending.estimate_id]["paired_by"] == "no run yet"
    assert rows[pending.estimate_id]["actual_tokens"] is None

    [video] = costs.estimate_videos_against_actual(ledger, first.estimate_id).as_dicts()
    assert (video["video_id"], video["counted_tokens"], video["actual_tokens"]) == (
        first_video, counted, round(counted * 1.2))

    with pytest.raises(NotFoundError):
        costs.attach_run(ledger, "0123456789abcdef", "run-3")
    with pytest.raises(ValidationError, match="run id"):
        costs.attach_run(ledger, first.estimate_id, "../../etc")
    with pytest.raises(NotFoundError):
        costs.estimate_videos_against_actual(ledger, "0123456789abcdef")


def test_an_estimate_from_before_runs_were_attached_is_still_read_by_model_and_time(
    services: Services, creator: tuple[str, str]
) -> None:
    creator_id, _ = creator
    ledger = services.ledger
    directory = ledger.layout.estimates_dir
    directory.mkdir(parents=True)
    old_schema = pa.schema([f for f in costs.ESTIMATES_SCHEMA if f.name in (
        "estimate_id", "created_at", "kind", "creator_id", "provider", "model", "videos",
        "tokens", "estimated_usd", "price_table_version")])
    pq.write_table(pa.Table.from_pylist([{
        "estimate_id": "00000000000000aa", "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        "kind": "reembed", "creator_id": creator_id, "provider": "openai", "model": SMALL,
        "videos": 2, "tokens": 2000.0, "estimated_usd": Decimal("0.00004"),
        "price_table_version": "2026-11-01"}], schema=old_schema),
        directory / "00000000000000aa.parquet")
    _bill(ledger, creator_id, "vd_0000000000000001", "any-run", 2100)

    [row] = costs.estimates_against_actual(ledger).as_dicts()
    assert (row["paired_by"], row["actual_tokens"], row["actual_usd"]) == (
        "model+time", 2100, Decimal("0.000042"))
    assert row["tokenizer"] is None and row["estimated_usd"] == Decimal("0.00004")


# The sample lecture re-embedded through the real openai SDK on the loopback server ---------
@pytest.mark.slow
def test_estimate_meets_what_the_provider_bills_for_the_sample_lecture(
    world: World, tmp_path: Path
) -> None:
    """The loopback server bills words + 1 per input, not cl100k tokens: the first estimate
    is off by what that difference makes; once a run has billed an estimate's texts, the
    next estimates (of other texts, too) are within 5 % of the bill."""
    data_dir = tmp_path / "data"
    copy_data_dir(world.settings.data_dir, data_dir)
    with loopback() as server:
        def reembed(chat_model: str, run_id: str, backfill_id: str | None = None
                    ) -> tuple[costs.Estimate, int, list[str], list[str]]:
            """Estimate, attach the run, re-embed the sample with these settings: the
            estimate, what the server billed, what went over the wire, what was counted."""
            services = Services(make_settings(
                data_dir, embedder="openai", openai_api_key="sk-test",
                openai_base_url=f"{server.base_url}/v1", chat_model=chat_model,
                anthropic_api_key="sk-ant-test", anthropic_base_url=server.base_url))
            try:
                with_sentences = embeds_sentences(services)
                estimate = costs.estimate_reembed(
                    services.ledger, services.catalog, services.storage, SMALL,
                    creator_id=world.creator_id, course_id=world.course_id,
                    with_sentences=with_sentences)
                costs.attach_run(services.ledger, estimate.estimate_id, run_id,
                                 backfill_id=backfill_id)
                bills, requests = len(server.billed), len(server.requests)
                embed_video(services, world.video_id, run_id=run_id, force=True)
                sent = [t for path, body in server.requests[requests:]
                        if path == "/v1/embeddings" for t in body["input"]]
                video = services.catalog.find_video(world.video_id)
                counted = texts_to_embed(load_chunks(services, video), with_sentences)
                return (estimate, sum(b["input_token"] for b in server.billed[bills:]), sent,
                        counted)
            finally:
                services.close()

        def error(estimate: costs.Estimate, billed: int) -> float:
            return (estimate.tokens - billed) / billed

        # Chunks only (a chat model that reads no sentence vectors): nothing to calibrate by.
        chunks, billed_chunks, sent, counted = reembed("anthropic", "run-1")
        assert sorted(sent) == sorted(counted) and chunks.per_video[0].texts == len(counted)
        assert chunks.calibration_videos == 0
        # Chunks and the answerer's sentences: ten times the texts, calibrated by run-1.
        sentences, billed_sentences, sent, counted = reembed("local", "run-2", "bf-2")
        assert sorted(sent) == sorted(counted) and sentences.per_video[0].texts == len(counted)
        assert len(counted) > 5 * chunks.per_video[0].texts
        assert sentences.calibration_videos == 1
        # The same again, calibrated by both runs.
        again, billed_again, _, _ = reembed("local", "run-3")
        assert again.calibration_videos == 2
        print(f"\nchunks: {chunks.per_video[0].texts} texts, cl100k {chunks.counted_tokens}, "
              f"billed {billed_chunks} ({100 * error(chunks, billed_chunks):+.2f} %, "
              f"uncalibrated)\nchunks+sentences: {sentences.per_video[0].texts} texts, cl100k "
              f"{sentences.counted_tokens} × {sentences.calibration:.4f} = "
              f"{sentences.tokens:.0f}, billed {billed_sentences} "
              f"({100 * error(sentences, billed_sentences):+.2f} %)\nagain: × "
              f"{again.calibration:.4f} = {again.tokens:.0f}, billed {billed_again} "
              f"({100 * error(again, billed_again):+.2f} %)")
        assert abs(error(sentences, billed_sentences)) < 0.05
        assert abs(error(again, billed_again)) < 0.05

        ledger = Ledger(data_dir / "ledger", PriceTable.load())
        rows = {r["estimate_id"]: r for r in costs.estimates_against_actual(ledger).as_dicts()}
        for estimate, billed in ((chunks, billed_chunks), (sentences, billed_sentences),
                                 (again, billed_again)):
            row = rows[estimate.estimate_id]
            assert (row["paired_by"], row["runs"], row["actual_tokens"]) == ("run", 1, billed)
            assert row["actual_usd"] == Decimal(billed) * Decimal("0.02") / 10**6
        assert rows[sentences.estimate_id]["backfills"] == "bf-2"
