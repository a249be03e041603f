"""The ``chronos`` command line: creators, ingest, status, transcripts, questions, costs, serving.

People and scripts depend on these exact forms; see README.md. Errors print one line to
stderr and exit 1; ``ingest --wait`` exits 1 when the video fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from chronos_pipeline.lib import costs
from chronos_pipeline.lib.budgets import parse_usd
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import ChronosError, ValidationError
from chronos_pipeline.lib.ledger_compaction import compact_ledger
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import TRANSCRIPT
from chronos_pipeline.lib.timefmt import timestamp

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "lecture"
FINAL = {VideoStatus.READY, VideoStatus.FAILED}
SERVE_STOP_S = 10.0
# Seconds an API worker may take to start (import, migrate) before uvicorn gives up on it.
WORKER_START_S = 120


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    def cell(value: Any) -> str:
        # Exact amounts: a paid $0.00000008 must not print as 0.
        if isinstance(value, Decimal):
            return format(value.normalize(), "f") if value else "0"
        if isinstance(value, float):
            return format(value, ".12g")
        return "" if value is None else str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in text:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    if not rows:
        print("(no rows)")


# creators and courses ---------------------------------------------------------------------
def cmd_creators_create(services: Services, args: argparse.Namespace) -> int:
    creator, api_key = services.catalog.create_creator(args.name)
    print(f"creator_id: {creator.id}")
    print(f"api_key: {api_key}")
    _say("Keep the API key: it is shown once and stored only as a hash.")
    return 0


def cmd_creators_list(services: Services, args: argparse.Namespace) -> int:
    rows = [(c.id, c.name, c.api_key_prefix + "…", c.created_at.isoformat(timespec="seconds"))
            for c in services.catalog.list_creators()]
    _print_table(["creator_id", "name", "api_key", "created_at"], rows)
    return 0


def cmd_creators_rotate(services: Services, args: argparse.Namespace) -> int:
    print(f"api_key: {services.catalog.rotate_api_key(args.creator_id)}")
    return 0


def _forget_partitions(services: Services, video_ids: list[str]) -> None:
    from chronos_pipeline.instance import open_instance
    from chronos_pipeline.operations import forget_partition

    instance = open_instance(services.settings)
    try:
        for video_id in video_ids:
            forget_partition(instance, video_id)
    finally:
        instance.dispose()


def cmd_creators_delete(services: Services, args: argparse.Namespace) -> int:
    from chronos_pipeline.lib.deletion import delete_creator

    creator = services.catalog.get_creator(args.creator_id)
    lectures = services.catalog.list_videos(creator.id, include_unlisted=True)
    if not args.yes:
        _say(f"This deletes creator {creator.name!r} ({creator.id}), their {len(lectures)} "
             "lecture(s) with all files and vectors, courses, students and chats. Cost "
             "records stay in the ledger.")
        try:
            answer = input("Type the creator id to confirm: ").strip()
        except EOFError:
            answer = ""
        if answer != creator.id:
            _say("not deleted")
            return 1
    deleted = delete_creator(services, creator.id)
    _forget_partitions(services, deleted.video_ids)
    print(f"deleted creator {creator.id} and {len(deleted.video_ids)} lecture(s)")
    return 0


def cmd_videos_delete(services: Services, args: argparse.Namespace) -> int:
    from chronos_pipeline.lib.deletion import delete_lecture

    services.catalog.get_creator(args.creator)
    video = delete_lecture(services, args.creator, args.video_id)
    _forget_partitions(services, [video.id])
    print(f"deleted lecture {video.id} ({video.title!r})")
    return 0


def cmd_videos_retry(services: Services, args: argparse.Namespace) -> int:
    from chronos_pipeline.instance import open_instance
    from chronos_pipeline.operations import retry_video

    services.catalog.get_video(args.creator, args.video_id)
    instance = open_instance(services.settings)
    try:
        video = retry_video(instance, services, args.video_id)
    finally:
        instance.dispose()
    print(f"{video.id} {video.status.value}")
    return 0


def cmd_courses_create(services: Services, args: argparse.Namespace) -> int:
    services.catalog.get_creator(args.creator)
    print(services.catalog.create_course(args.creator, args.name).id)
    return 0


def cmd_courses_list(services: Services, args: argparse.Namespace) -> int:
    rows = [(c.id, c.name) for c in services.catalog.list_courses(args.creator)]
    _print_table(["course_id", "name"], rows)
    return 0


# ingest and status ------------------------------------------------------------------------
def wait_for(services: Services, video_id: str, timeout_s: float) -> VideoStatus:
    """Drive or follow the pipeline until the video is ready or failed.

    While a Dagster daemon beats, its sensor runs the video and this follows the status; the
    moment it stops beating (or when there is none), the pending runs execute here, after
    runs left behind by a dead process are failed and their lectures queued again.
    """
    from chronos_pipeline.instance import open_instance
    from chronos_pipeline.resources.data import ChronosData
    from chronos_pipeline.runner import daemon_is_running, run_pending
    from chronos_pipeline.worker import pipeline_lock

    instance = open_instance(services.settings)
    data = ChronosData(data_dir=str(services.settings.data_dir),
                       database_url=services.settings.database_url)
    deadline = time.monotonic() + timeout_s
    last: VideoStatus | None = None
    said = ""
    try:
        while True:
            video = services.catalog.find_video(video_id)
            if video.status is not last:
                _say(f"status: {video.status.value}")
                last = video.status
            if video.status in FINAL:
                return video.status
            if time.monotonic() > deadline:
                raise ChronosError(f"gave up waiting after {timeout_s:.0f} s (status {last})")
            if daemon_is_running(instance):
                mode = "a Dagster daemon is running; following its run"
            else:
                with pipeline_lock(services.settings.data_dir) as held:
                    if held:
                        mode = ""
                        # Every pending upload runs, oldest first: a queue, not just this one.
                        run_pending(instance, data, announce=_say)
                    else:
                        mode = ("another process (chronos serve?) is running the pipeline; "
                                "following it")
            if mode and mode != said:
                _say(mode)
            said = mode
            time.sleep(1.0)
    finally:
        instance.dispose()


def cmd_ingest(services: Services, args: argparse.Namespace) -> int:
    services.catalog.get_creator(args.creator)
    video = services.ingest.ingest_file(args.creator, Path(args.path), title=args.title,
                                        course_id=args.course)
    print(video.id, flush=True)
    if not args.wait:
        return 0
    status = wait_for(services, video.id, args.timeout)
    if status is VideoStatus.FAILED:
        _say(f"error: {services.catalog.find_video(video.id).error_message}")
        return 1
    return 0


def cmd_status(services: Services, args: argparse.Namespace) -> int:
    video = services.catalog.find_video(args.video_id)
    history = services.catalog.status_history(video.id)
    if args.json:
        print(json.dumps({
            "video_id": video.id, "creator_id": video.creator_id, "title": video.title,
            "status": video.status.value, "error": video.error_message,
            "duration_s": video.duration_s, "size_bytes": video.size_bytes,
            "history": [{"status": e.status.value, "at": e.at.isoformat(),
                         "message": e.message} for e in history],
        }, indent=2))
        return 0
    print(f"{video.id}  {video.title!r}  {video.status.value}")
    if video.error_message:
        print(f"error: {video.error_message}")
    for event in history:
        print(f"  {event.at.isoformat(timespec='seconds')}  {event.status.value}")
    return 0


def cmd_transcript(services: Services, args: argparse.Namespace) -> int:
    from chronos_pipeline.lib.transcript_formats import render
    from chronos_pipeline.lib.transcripts import Transcript

    video = services.catalog.find_video(args.video_id)
    data = services.storage.read_json(video.creator_id, video.id, TRANSCRIPT)
    fmt = "json" if args.json else args.format
    sys.stdout.write(render(Transcript.from_json(data), fmt, video.id))
    return 0


def cmd_uploads_clean(services: Services, args: argparse.Namespace) -> int:
    removed = services.ingest.clean_expired()
    print(f"removed {removed} abandoned upload(s)")
    return 0


# questions and costs ----------------------------------------------------------------------
def cmd_ask(services: Services, args: argparse.Namespace) -> int:
    services.catalog.get_creator(args.creator)
    answer = services.answering.answer(args.creator, args.question, course_id=args.course)
    if args.json:
        data = answer.to_json()
        data.pop("session_id")
        data.pop("message_id")
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(answer.answer.strip())
    if answer.references:
        print("\nReferences:")
        for ref in answer.references:
            print(f"  [{ref.timestamp}] {ref.title} ({ref.start_s:.1f}–{ref.end_s:.1f} s, "
                  f"score {ref.score:.2f})")
    print(f"\ncost: ${float(answer.cost_usd):.6f}")
    return 0


def cmd_eval(services: Services, args: argparse.Namespace) -> int:
    """Ask a question file's questions and score the cited moments; 2 for a bad file."""
    from chronos_pipeline.lib.evaluation import evaluate, load_questions, summary_lines

    try:
        questions = load_questions(args.questions)
    except ValidationError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    report = evaluate(services.answering, services.catalog, services.ledger, args.creator,
                      questions, course_id=args.course, name=args.questions.name)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(summary_lines(report)))
    return 0


def cmd_costs_sql(services: Services, args: argparse.Namespace) -> int:
    columns, rows = services.ledger.query(args.sql)
    if args.json:
        print(json.dumps([{c: _jsonable(v) for c, v in zip(columns, row, strict=True)}
                          for row in rows], indent=2))
    else:
        _print_table(columns, rows)
    return 0


def cmd_costs_report(services: Services, args: argparse.Namespace) -> int:
    table = costs.report_by_video_and_stage(services.ledger, args.creator)
    _print_table(table.columns, table.rows)
    return 0


def _totals(services: Services) -> LedgerTotals:
    totals = services.ledger.totals
    assert isinstance(totals, LedgerTotals)  # Services always wires them
    return totals


def cmd_costs_rebuild_totals(services: Services, args: argparse.Namespace) -> int:
    calls, rows = _totals(services).rebuild(services.ledger)
    print(f"recounted {calls} provider call(s) from the ledger into {rows} month-to-date "
          "total(s)")
    return 0


def cmd_costs_check_totals(services: Services, args: argparse.Namespace) -> int:
    drifts = _totals(services).check(services.ledger)
    _print_table(["creator_id", "month", "student_id", "kept_usd", "ledger_usd"],
                 [(d.creator_id, d.month, d.student_id or "(all)", d.kept_usd, d.ledger_usd)
                  for d in drifts])
    if drifts:
        _say("the kept totals differ from the ledger: run `chronos costs rebuild-totals`")
        return 1
    return 0


def cmd_costs_compact(services: Services, args: argparse.Namespace) -> int:
    report = compact_ledger(services.ledger)
    if report.skipped:
        _say("another compaction is running; nothing done")
        return 0
    print(f"view {report.view}: {report.files_before} file(s) → {report.files_after}, "
          f"{report.records_rewritten} record(s) rewritten in {len(report.days)} day(s), "
          f"{report.reconciled_calls} call(s) added to the totals, "
          f"{report.seconds:.2f} s")
    return 0


def cmd_budgets_set(services: Services, args: argparse.Namespace) -> int:
    services.catalog.get_creator(args.creator)
    hard = parse_usd(args.hard, "--hard") if args.hard else None
    services.catalog.set_budget(args.creator, parse_usd(args.monthly, "--monthly"), hard)
    services.budgets.record_alerts(args.creator)
    return cmd_budgets_show(services, args)


def cmd_budgets_show(services: Services, args: argparse.Namespace) -> int:
    services.catalog.get_creator(args.creator)
    print(json.dumps(services.budgets.status(args.creator).to_json(), indent=2))
    return 0


def cmd_costs_recompute(services: Services, args: argparse.Namespace) -> int:
    from datetime import date

    from chronos_pipeline.lib.errors import ValidationError

    try:
        as_of = date.fromisoformat(args.as_of)
    except ValueError:
        raise ValidationError(
            f"--as-of must be a date like 2026-12-01, got {args.as_of!r}"
        ) from None
    rows = costs.recompute(services.ledger, as_of, args.creator)
    _print_table(
        ["stage", "provider", "model", "unit", "quantity", "recorded_usd", "repriced_usd",
         "price_table"],
        [(r.stage, r.provider, r.model, r.unit, r.quantity, r.recorded_usd, r.repriced_usd,
          r.price_table_version) for r in rows],
    )
    recorded = sum((r.recorded_usd for r in rows), Decimal(0))
    repriced = sum((r.repriced_usd for r in rows), Decimal(0))
    print(f"\ntotal recorded ${recorded:.6f}, repriced as of {as_of} ${repriced:.6f} "
          "(the ledger itself is unchanged)")
    return 0


def cmd_costs_estimate_reembed(services: Services, args: argparse.Namespace) -> int:
    from chronos_pipeline.lib.steps import embeds_sentences

    with_sentences = (embeds_sentences(services) if args.sentences is None
                      else args.sentences == "yes")
    estimate = costs.estimate_reembed(
        services.ledger, services.catalog, services.storage, args.model,
        provider=args.provider, creator_id=args.creator, course_id=args.course,
        with_sentences=with_sentences, run_id=args.run_id, backfill_id=args.backfill_id)
    scope = (f"creator {estimate.creator_id}" if estimate.creator_id else "every creator") + (
        f", course {estimate.course_id}" if estimate.course_id else "")
    print(f"estimate {estimate.estimate_id}: re-embedding {estimate.videos} ready video(s) of "
          f"{scope} with {estimate.provider}/{estimate.model}")
    _print_table(["video_id", "texts", "counted_tokens", "estimated_tokens", "estimated_usd"],
                 [(v.video_id, v.texts, v.counted_tokens, round(v.tokens), v.estimated_usd)
                  for v in estimate.per_video])
    texts = "chunks and the answerer's sentences" if with_sentences else "chunks"
    print(f"  {estimate.counted_tokens:,} tokens of {texts} counted by {estimate.tokenizer}")
    if estimate.calibration_videos:
        print(f"  × {estimate.calibration:.4f} (billed / counted over "
              f"{estimate.calibration_videos} video(s) of earlier estimated runs)")
    else:
        print("  no earlier estimated run of this model to calibrate against: counted as is")
    print(f"  = {estimate.tokens:,.0f} tokens at price table {estimate.price_table_version}: "
          f"${estimate.estimated_usd:.6f}")
    if estimate.without_chunks:
        _say(f"not counted (ready, but no chunks on disk): {', '.join(estimate.without_chunks)}")
    _say("Attach the run that carries it out (`chronos costs attach-run`, or the re-embed "
         "job does it); `chronos costs estimates` then shows it against that run's actual.")
    return 0


def cmd_costs_attach_run(services: Services, args: argparse.Namespace) -> int:
    costs.attach_run(services.ledger, args.estimate, args.run_id, backfill_id=args.backfill_id)
    print(f"estimate {args.estimate}: run {args.run_id} attached")
    return 0


def cmd_costs_estimates(services: Services, args: argparse.Namespace) -> int:
    if args.estimate:
        table = costs.estimate_videos_against_actual(services.ledger, args.estimate)
    else:
        table = costs.estimates_against_actual(services.ledger)
    _print_table(table.columns, table.rows)
    return 0


# serving and Dagster ----------------------------------------------------------------------
def cmd_serve(services: Services, args: argparse.Namespace) -> int:
    import uvicorn

    worker = None
    if not args.no_pipeline:
        from chronos_pipeline.worker import PipelineWorker

        pipeline_log = logging.getLogger("chronos.pipeline")
        pipeline_log.setLevel(logging.INFO)
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        pipeline_log.addHandler(handler)
        worker = PipelineWorker(services.settings)
        worker.start()
    try:
        # A worker imports the app (Dagster, LanceDB, torch) before it answers uvicorn's
        # health check; on a busy machine that takes well over the 5 s default, and uvicorn
        # would kill and restart workers forever.
        uvicorn.run("chronos_api.app:create_app", factory=True, host=args.host,
                    port=args.port, workers=args.workers,
                    timeout_worker_healthcheck=WORKER_START_S)
    finally:
        if worker is not None and not worker.stop(timeout_s=SERVE_STOP_S):
            _say("a pipeline run was still going at shutdown; its video stays in its stage")
    return 0


def _dagster_home_with_pools(services: Services) -> Path:
    """Write dagster.yaml and give the pools their limits, so the UI lists them at once."""
    from chronos_pipeline.instance import open_instance, prepare_dagster_home

    open_instance(services.settings).dispose()
    return prepare_dagster_home(services.settings)


def cmd_dagster_home(services: Services, args: argparse.Namespace) -> int:
    print(_dagster_home_with_pools(services))
    return 0


def cmd_celery_worker(services: Services, args: argparse.Namespace) -> int:
    """Dagster's Celery worker (``dagster-celery worker start``) with this deployment's
    broker, queue, Dagster home and data directory."""
    import socket

    from chronos_pipeline.celery_executor import run_worker

    name = args.name or f"chronos-{socket.gethostname()}-{os.getpid()}"
    return run_worker(services.settings, name=name, concurrency=args.concurrency,
                      loglevel=args.loglevel)


def cmd_dev(services: Services, args: argparse.Namespace) -> int:
    home = _dagster_home_with_pools(services)
    env = {**os.environ, "DAGSTER_HOME": str(home),
           "CHRONOS_DATA_DIR": str(services.settings.data_dir)}
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
               "-h", args.host, "-p", str(args.port)]
    return subprocess.call(command, env=env, cwd=REPO)


def cmd_demo(services: Services, args: argparse.Namespace) -> int:
    """Creator → ingest the sample lecture → wait → three questions → cost report."""
    from chronos_pipeline.lib.evaluation import load_questions

    questions = load_questions(SAMPLE / "questions.json").covered
    creator, _key = services.catalog.create_creator("Demo creator")
    print(f"== creator {creator.id}")
    course = services.catalog.create_course(creator.id, "Markets 101")
    video = services.ingest.ingest_file(creator.id, SAMPLE / "lecture.mp4",
                                        title="Momentum indicators: moving averages and RSI",
                                        course_id=course.id)
    print(f"== ingested {video.id} ({video.duration_s:.0f} s); running the pipeline")
    started = time.monotonic()
    status = wait_for(services, video.id, args.timeout)
    if status is VideoStatus.FAILED:
        _say(f"error: {services.catalog.find_video(video.id).error_message}")
        return 1
    print(f"== ready in {time.monotonic() - started:.1f} s")
    for item in [questions[i] for i in (1, len(questions) // 2, len(questions) - 1)]:
        answer = services.answering.answer(creator.id, item.question)
        print(f"\n== Q: {item.question}  (the lecture answers at "
              f"{timestamp(item.answer_at_s or 0.0)})")
        print(answer.answer.strip())
    print("\n== costs (DuckDB over the ledger)")
    table = costs.report_by_video_and_stage(services.ledger, creator.id)
    _print_table(table.columns, table.rows)
    if args.no_serve:
        return 0
    host = services.settings.api_host
    port = args.port or services.settings.api_port
    token, _csrf = services.catalog.create_web_session(
        Principal(creator.id, creator.name), ttl=timedelta(minutes=30))
    print("\n== the web app is starting; open this link within 30 minutes to be signed in "
          "as the demo creator (Ctrl-C stops the server):")
    print(f"   http://{host}:{port}/signin/link?token={token}\n", flush=True)
    args.host, args.port, args.workers, args.no_pipeline = host, port, 1, False
    return cmd_serve(services, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chronos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    creators = sub.add_parser("creators", help="manage creators and their API keys")
    csub = creators.add_subparsers(dest="action", required=True)
    p = csub.add_parser("create", help="create a creator; prints its id and API key")
    p.add_argument("name")
    p.set_defaults(func=cmd_creators_create)
    p = csub.add_parser("list", help="list creators")
    p.set_defaults(func=cmd_creators_list)
    p = csub.add_parser("rotate-key", help="replace a creator's API key")
    p.add_argument("creator_id")
    p.set_defaults(func=cmd_creators_rotate)

    p = csub.add_parser("delete", help="delete a creator and everything of theirs but costs")
    p.add_argument("creator_id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_creators_delete)

    videos = sub.add_parser("videos", help="manage a creator's lectures")
    vsub = videos.add_subparsers(dest="action", required=True)
    p = vsub.add_parser("delete", help="delete a lecture's files and vectors (costs stay)")
    p.add_argument("video_id")
    p.add_argument("--creator", required=True)
    p.set_defaults(func=cmd_videos_delete)
    p = vsub.add_parser("retry", help="run a failed lecture through the pipeline again")
    p.add_argument("video_id")
    p.add_argument("--creator", required=True)
    p.set_defaults(func=cmd_videos_retry)

    courses = sub.add_parser("courses", help="manage a creator's courses")
    osub = courses.add_subparsers(dest="action", required=True)
    p = osub.add_parser("create", help="create a course; prints its id")
    p.add_argument("name")
    p.add_argument("--creator", required=True)
    p.set_defaults(func=cmd_courses_create)
    p = osub.add_parser("list", help="list a creator's courses")
    p.add_argument("--creator", required=True)
    p.set_defaults(func=cmd_courses_list)

    p = sub.add_parser("ingest", help="register a video file; prints the video id")
    p.add_argument("path")
    p.add_argument("--creator", required=True)
    p.add_argument("--title")
    p.add_argument("--course")
    p.add_argument("--wait", action="store_true", help="block until ready or failed")
    p.add_argument("--timeout", type=float, default=4 * 3600.0)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("status", help="a video's status and its history")
    p.add_argument("video_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("transcript", help="a video's transcript (text, captions or JSON)")
    p.add_argument("video_id")
    p.add_argument("--format", choices=["txt", "srt", "vtt", "json"], default="txt",
                   help="txt: [mm:ss] lines (default); srt/vtt: captions; json: segments")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.set_defaults(func=cmd_transcript)

    uploads = sub.add_parser("uploads", help="uploads still arriving")
    usub = uploads.add_subparsers(dest="action", required=True)
    p = usub.add_parser("clean", help="remove expired unfinished uploads and stray partial files")
    p.set_defaults(func=cmd_uploads_clean)

    p = sub.add_parser("ask", help="ask a question of a creator's lectures")
    p.add_argument("question")
    p.add_argument("--creator", required=True)
    p.add_argument("--course")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="score answers on a question file (hit@k, MRR, "
                       "abstention, citation precision, cost)")
    p.add_argument("questions", type=Path, help='a question file: {"questions": [...]}, '
                   "see README.md")
    p.add_argument("--creator", required=True)
    p.add_argument("--course")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    cost = sub.add_parser("costs", help="query the cost ledger")
    ksub = cost.add_subparsers(dest="action", required=True)
    p = ksub.add_parser("sql", help="run DuckDB SQL over the cost_records view")
    p.add_argument("sql")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_costs_sql)
    p = ksub.add_parser("recompute", help="re-price the ledger under another price table")
    p.add_argument("--as-of", required=True, help="price the ledger as on this date")
    p.add_argument("--creator")
    p.set_defaults(func=cmd_costs_recompute)
    p = ksub.add_parser(
        "estimate-reembed",
        help="expected cost of re-embedding the ready videos with a model: their chunks (and "
             "the answerer's sentences) counted by the model's own tokenizer, calibrated by "
             "earlier estimated runs, priced by the price table")
    p.add_argument("--model", required=True)
    p.add_argument("--provider", help="needed only when several providers price the model")
    p.add_argument("--creator", help="one creator's videos (default: every creator's)")
    p.add_argument("--course", help="only this course's videos (needs --creator)")
    p.add_argument("--sentences", choices=["yes", "no"],
                   help="count the extractive answerer's sentence texts too (default: as the "
                        "embeddings step would, i.e. yes with the local chat model)")
    p.add_argument("--run-id", help="the run that carries the estimate out, if known now")
    p.add_argument("--backfill-id")
    p.set_defaults(func=cmd_costs_estimate_reembed)
    p = ksub.add_parser("attach-run",
                        help="pair a re-embedding estimate with a run that carries it out")
    p.add_argument("--estimate", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--backfill-id")
    p.set_defaults(func=cmd_costs_attach_run)
    p = ksub.add_parser("estimates",
                        help="re-embedding estimates against the actual of their own runs")
    p.add_argument("--estimate", help="one estimate, video by video")
    p.set_defaults(func=cmd_costs_estimates)
    p = ksub.add_parser("report", help="totals per video, stage, model and unit")
    p.add_argument("--creator")
    p.set_defaults(func=cmd_costs_report)
    p = ksub.add_parser("rebuild-totals",
                        help="recount the month-to-date totals from the ledger")
    p.set_defaults(func=cmd_costs_rebuild_totals)
    p = ksub.add_parser("check-totals",
                        help="compare the month-to-date totals with the ledger (exit 1 if apart)")
    p.set_defaults(func=cmd_costs_check_totals)
    p = ksub.add_parser("compact", help="fold the ledger's small files into per-day files")
    p.set_defaults(func=cmd_costs_compact)

    budgets = sub.add_parser("budgets", help="monthly budgets and their alerts")
    bsub = budgets.add_subparsers(dest="action", required=True)
    p = bsub.add_parser("set", help="set a creator's monthly budget (USD)")
    p.add_argument("--creator", required=True)
    p.add_argument("--monthly", required=True, help="budget in USD, e.g. 25")
    p.add_argument("--hard", help="hard limit in USD (default: the budget)")
    p.set_defaults(func=cmd_budgets_set)
    p = bsub.add_parser("show", help="budget, month-to-date spend and alerts")
    p.add_argument("--creator", required=True)
    p.set_defaults(func=cmd_budgets_show)

    p = sub.add_parser("serve", help="serve the HTTP API")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-pipeline", action="store_true",
                   help="do not run uploads in this process when no Dagster daemon runs")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("dagster-home", help="write and print this data dir's DAGSTER_HOME")
    p.set_defaults(func=cmd_dagster_home)
    p = sub.add_parser("celery-worker",
                       help="run a Celery worker for the steps of runs (CHRONOS_EXECUTOR=celery)")
    p.add_argument("--name", help="worker name (default: chronos-<host>-<pid>)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="steps this worker runs at once (default 1: Whisper takes the cores)")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_celery_worker)
    p = sub.add_parser("dev", help="run the Dagster UI and daemon (dagster dev)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("demo", help="ingest the sample lecture and ask it three questions")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--port", type=int, default=None, help="where the web app listens")
    p.add_argument("--no-serve", action="store_true",
                   help="stop after the cost table instead of starting the web app")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Schema migrations and model loading narrate at INFO; a CLI user needs none of it.
    for name in ("alembic", "faster_whisper", "sentence_transformers", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        services = Services.from_env()
        if args.command == "serve":
            args.host = args.host or services.settings.api_host
            args.port = args.port or services.settings.api_port
        try:
            code: int = args.func(services, args)
        finally:
            services.close()
        return code
    except ChronosError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
