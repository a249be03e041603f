"""Rebuild ``chronos_pipeline/lib/token_data/cl100k_base.tiktoken.gz`` from a registry package.

tiktoken (PyPI) downloads its encodings from OpenAI's blob store at first use, which Chronos
may never do at run time. The npm package ``tiktoken`` (dqbd's JS/WASM bindings, MIT)
bundles the same ranks in ``encoders/cl100k_base.json``, compressed as lines of
``! <first rank> <base64 token> <base64 token> …`` (consecutive ranks). This script fetches
that package with ``npm pack`` at a pinned version, checks the tarball's sha256, expands the
ranks into tiktoken's own ``.tiktoken`` format (``<base64 token> <rank>`` per line, by rank)
and checks the result against the sha256 that tiktoken itself expects of OpenAI's published
``cl100k_base.tiktoken`` (``tiktoken_ext/openai_public.py``): a match means the file is
byte-for-byte OpenAI's. It is stored gzipped (mtime 0, so rebuilding gives the same bytes).

    python scripts/vendor_cl100k.py            fetch, verify, write the file
    python scripts/vendor_cl100k.py --check    fetch, verify, compare with the shipped file
    python scripts/vendor_cl100k.py --tarball tiktoken-1.0.22.tgz   use a tarball at hand
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

NPM_PACKAGE = "tiktoken@1.0.22"
TARBALL_SHA256 = "55c339e756fdb17604f7c7e3eb35d2bcbffe4d960e8096e50285d1cefa51dd90"
MEMBER = "package/encoders/cl100k_base.json"
# tiktoken_ext/openai_public.py: cl100k_base(expected_hash=...), OpenAI's published file.
TIKTOKEN_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
TARGET = (Path(__file__).resolve().parents[1] / "chronos_pipeline" / "lib" / "token_data"
          / "cl100k_base.tiktoken.gz")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_tarball(directory: Path) -> Path:
    subprocess.run(["npm", "pack", "--silent", NPM_PACKAGE], cwd=directory, check=True,
                   stdout=subprocess.DEVNULL)
    [tarball] = directory.glob("*.tgz")
    return tarball


def expand_ranks(compressed: str) -> bytes:
    """npm tiktoken's compressed ``bpe_ranks`` → tiktoken's ``.tiktoken`` bytes."""
    ranks: dict[str, int] = {}
    for line in compressed.split("\n"):
        if not line:
            continue
        _marker, first, *tokens = line.split(" ")
        for offset, token in enumerate(tokens):
            ranks[token] = int(first) + offset
    if len(set(ranks.values())) != len(ranks):
        raise SystemExit("two tokens share a rank: not a BPE rank table")
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    return b"".join(f"{token} {rank}\n".encode() for token, rank in ordered)


def build(tarball: Path) -> bytes:
    raw = tarball.read_bytes()
    if _sha256(raw) != TARBALL_SHA256:
        raise SystemExit(f"{tarball}: sha256 {_sha256(raw)}, expected {TARBALL_SHA256}")
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            raise SystemExit(f"{MEMBER} is missing from {tarball}")
        encoder = json.loads(member.read())
    ranks = expand_ranks(encoder["bpe_ranks"])
    if _sha256(ranks) != TIKTOKEN_SHA256:
        raise SystemExit(f"expanded ranks: sha256 {_sha256(ranks)}, expected tiktoken's "
                         f"{TIKTOKEN_SHA256}")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0,
                       filename="") as out:
        out.write(ranks)
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--tarball", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        tarball = args.tarball or fetch_tarball(Path(work))
        data = build(tarball)
    if args.check:
        same = TARGET.is_file() and TARGET.read_bytes() == data
        print(f"{TARGET.name}: {'matches' if same else 'DIFFERS from'} {NPM_PACKAGE}")
        return 0 if same else 1
    TARGET.write_bytes(data)
    print(f"wrote {TARGET} ({len(data):,} bytes, sha256 {_sha256(data)}); ranks sha256 "
          f"{TIKTOKEN_SHA256} (tiktoken's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
