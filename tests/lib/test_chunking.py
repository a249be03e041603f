"""Chunks are sentence-aligned, bounded, overlapping and keep their times."""

from __future__ import annotations

import itertools

from chronos_pipeline.lib.chunking import chunk_transcript, sentences
from chronos_pipeline.lib.transcripts import Segment, Transcript, Word


def _transcript(n_sentences: int, words_per_sentence: int = 10) -> Transcript:
    segments = []
    t = 0.0
    for i in range(n_sentences):
        words = []
        for j in range(words_per_sentence):
            token = f"w{i}_{j}" + ("." if j == words_per_sentence - 1 else "")
            words.append(Word(token, t, t + 0.3))
            t += 0.4
        segments.append(Segment(words[0].start_s, words[-1].end_s,
                                " ".join(w.word for w in words), words))
        t += 1.0
    return Transcript("en", t, segments, "test")


def test_sentences_are_rebuilt_from_word_times_across_segments() -> None:
    words_a = [Word("The", 0.0, 0.2), Word("RSI", 0.3, 0.5), Word("is.", 0.6, 0.8),
               Word("It", 1.0, 1.2), Word("ranges", 1.3, 1.5)]
    words_b = [Word("to", 2.0, 2.2), Word("100.", 2.3, 2.6)]
    transcript = Transcript("en", 3.0, [
        Segment(0.0, 1.5, "The RSI is. It ranges", words_a),
        Segment(2.0, 2.6, "to 100.", words_b),
    ], "test")
    result = sentences(transcript)
    assert [(s.text, s.start_s, s.end_s) for s in result] == [
        ("The RSI is.", 0.0, 0.8),
        ("It ranges to 100.", 1.0, 2.6),
    ]


def test_chunks_hold_about_the_target_words_and_overlap_by_whole_sentences() -> None:
    chunks = chunk_transcript(_transcript(40), target_words=60, overlap_words=20)
    assert all(c.word_count <= 60 for c in chunks)
    assert all(c.word_count >= 30 for c in chunks[:-1])
    for previous, current in itertools.pairwise(chunks):
        shared = {s.start_s for s in previous.sentences} & {s.start_s for s in current.sentences}
        assert 1 <= len(shared) <= 2  # 10-word sentences: 20 words of overlap
        assert current.start_s > previous.start_s


def test_every_sentence_lands_in_some_chunk_with_its_time() -> None:
    transcript = _transcript(25)
    chunks = chunk_transcript(transcript, target_words=45, overlap_words=10)
    covered = {s.start_s for c in chunks for s in c.sentences}
    assert covered == {s.start_s for s in sentences(transcript)}
    for chunk in chunks:
        assert chunk.start_s == chunk.sentences[0].start_s
        assert chunk.end_s == chunk.sentences[-1].end_s


def test_a_sentence_longer_than_the_target_still_makes_progress() -> None:
    chunks = chunk_transcript(_transcript(3, words_per_sentence=35), target_words=20,
                              overlap_words=5)
    assert len(chunks) == 3
