"""Tokens an embedding model will bill for a list of texts, counted offline.

OpenAI's embedding models (``text-embedding-3-small``/``-large``, ``text-embedding-ada-002``)
read ``cl100k_base``. tiktoken would download that encoding at first use; Chronos ships
OpenAI's rank file instead (``token_data/cl100k_base.tiktoken.gz``, rebuilt and checked by
``scripts/vendor_cl100k.py`` from the npm package ``tiktoken``: its sha256 is the one tiktoken
itself expects of OpenAI's file) and builds the ``tiktoken.Encoding`` directly, so tiktoken
never touches its download path or cache. Texts are encoded as ordinary text: a
``<|endoftext|>`` inside a transcript is words, not a special token.

The local MiniLM model is counted by its own tokenizer (``LocalEmbedder.count_tokens``) with
the model's truncation at ``max_tokens``, exactly as ``LocalEmbedder.embed`` bills.

A model with neither is a ``ValidationError`` naming it: an estimate for a model we cannot
count would be a guess presented as a figure.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from base64 import b64decode
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from chronos_pipeline.lib.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    import tiktoken

CL100K_FILE = Path(__file__).with_name("token_data") / "cl100k_base.tiktoken.gz"
# The sha256 tiktoken expects of OpenAI's cl100k_base.tiktoken (tiktoken_ext/openai_public.py).
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# tiktoken 0.14's cl100k_base split pattern and special tokens (tiktoken_ext/openai_public.py).
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
                  r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258,
                  "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
                  "<|endofprompt|>": 100276}

OPENAI_ENCODINGS = {
    "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
}
LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Tokenizer:
    """Which tokenizer counts a model's tokens (shown beside every estimate)."""

    model: str
    name: str


def tokenizer_for(model: str) -> Tokenizer:
    if model in OPENAI_ENCODINGS:
        return Tokenizer(model, f"tiktoken {OPENAI_ENCODINGS[model]}")
    if model == LOCAL_MODEL:
        return Tokenizer(model, "all-MiniLM-L6-v2 WordPiece (truncated at 256)")
    known = ", ".join(sorted([*OPENAI_ENCODINGS, LOCAL_MODEL]))
    raise ValidationError(
        f"no offline tokenizer for embedding model {model!r}; tokens can be counted for: "
        f"{known}")


def count_tokens(model: str, texts: Sequence[str]) -> int:
    """Tokens ``model`` reads for ``texts`` (one input each), as its provider counts them."""
    tokenizer_for(model)  # an unknown model fails before anything loads
    if model in OPENAI_ENCODINGS:
        encoding = cl100k_base()
        return sum(len(ids) for ids in encoding.encode_ordinary_batch(list(texts),
                                                                      num_threads=2))
    from chronos_pipeline.lib.providers.local_embedder import LocalEmbedder

    embedder = LocalEmbedder()
    return sum(min(embedder.count_tokens(t), embedder.max_tokens) for t in texts)


@lru_cache(maxsize=1)
def cl100k_base() -> tiktoken.Encoding:
    """The cl100k_base encoding from the shipped ranks (checked against tiktoken's hash)."""
    import tiktoken

    with _LOAD_LOCK:
        raw = gzip.decompress(CL100K_FILE.read_bytes())
        if hashlib.sha256(raw).hexdigest() != CL100K_SHA256:
            raise ConfigurationError(
                f"{CL100K_FILE} is not OpenAI's cl100k_base (sha256 mismatch); rebuild it with "
                "scripts/vendor_cl100k.py")
        ranks: dict[bytes, int] = {}
        for line in raw.splitlines():
            token, rank = line.split()
            ranks[b64decode(token)] = int(rank)
        return tiktoken.Encoding(name="cl100k_base", pat_str=CL100K_PATTERN,
                                 mergeable_ranks=ranks, special_tokens=CL100K_SPECIAL)
