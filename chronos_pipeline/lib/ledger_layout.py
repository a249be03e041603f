"""Where the ledger's files live, and the protocol that lets them be compacted while read.

::

    data/ledger                 symlink → ledger_store/views/v00000007-1764180000000
    data/ledger_store/lock      flock: appenders hold it shared, a view swap exclusive
    data/ledger_store/compactor.lock   one compactor at a time (taken without waiting)
    data/ledger_store/views/v…/day=YYYY-MM-DD/{a-…,c-…}.parquet
    data/ledger_estimates/      re-embedding estimates (once ledger/estimates/)

A *view* is a directory tree holding every record exactly once. While it is current it only
gains files (an appender renames a whole file in, holding ``lock`` shared); once superseded
it is never changed again, and it is deleted a grace period later. The compactor builds the
next view out of sight (hard links for the files it keeps, new ``c-`` files for the ones it
merges), then, holding ``lock`` exclusive, links the files appended meanwhile and replaces
the ``ledger`` symlink with ``rename(2)``, which is atomic. So any reader — ``Ledger.connect``
or an analyst's ``read_parquet('data/ledger/**/*.parquet')`` — lists one view or the other,
never both, and never a record twice. (DuckDB's ``**`` does not follow symlinked
directories below the pattern's root, which is why the root, not each day, is the link.)

A ledger written before views existed is a real directory: appends go into it as before,
and the first compaction turns it into a view (atomically where ``renameat2`` exists).
One host only: ``flock`` does not reach across machines (object storage would swap a
manifest object instead).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

VIEW_PREFIX = "v"
TEMP_VIEW_PREFIX = ".tmp-"
APPENDED_PREFIX = "a-"
COMPACTED_PREFIX = "c-"


@contextmanager
def flocked(path: Path, mode: int) -> Iterator[None]:
    """Hold ``flock(mode)`` on ``path``; the kernel drops it if the process dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def try_flock(path: Path) -> int | None:
    """An exclusive lock taken without waiting: its descriptor, or None if someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def view_generation(name: str) -> int | None:
    """``v00000007-…`` → 7; None for anything that is not a finished view."""
    if not name.startswith(VIEW_PREFIX) or len(name) < 9 or not name[1:9].isdigit():
        return None
    return int(name[1:9])


def view_created_ms(name: str) -> int:
    return int(name.split("-", 1)[1])


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the filesystem cannot
            return False
        raise OSError(errno, os.strerror(errno), str(a))
    return True


class LedgerLayout:
    """The paths of one ledger and the moves that keep its readers consistent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = root.parent / f"{root.name}_store"
        self.views = self.store / "views"
        self.lock_path = self.store / "lock"
        self.compactor_lock_path = self.store / "compactor.lock"
        self.estimates_dir = root.parent / f"{root.name}_estimates"

    def current(self) -> Path | None:
        """The directory readers see now: the current view, a legacy directory, or None."""
        if self.root.is_symlink():
            target = self.root.resolve()
            return target if target.is_dir() else None
        return self.root if self.root.is_dir() else None

    def adopt_legacy_estimates(self) -> Path:
        """Move estimates an older version kept in ``ledger/estimates/`` out of the ledger's
        tree (one rename per file: each is in one place or the other); returns their home."""
        old = self.root / "estimates"
        if old.is_dir() and not self.root.is_symlink():
            self.estimates_dir.mkdir(parents=True, exist_ok=True)
            for path in old.glob("*.parquet"):
                os.replace(path, self.estimates_dir / path.name)
            fsync_dir(self.estimates_dir)
            with suppress(OSError):  # a stray temporary file keeps it; harmless
                old.rmdir()
        return self.estimates_dir

    def is_legacy(self) -> bool:
        return self.root.is_dir() and not self.root.is_symlink()

    @contextmanager
    def appending(self) -> Iterator[Path]:
        """The current view, held (lock shared) so that no swap happens until the block ends."""
        self.store.mkdir(parents=True, exist_ok=True)
        while True:
            with flocked(self.lock_path, fcntl.LOCK_SH):
                view = self.current()
                if view is not None:
                    yield view
                    return
            with flocked(self.lock_path, fcntl.LOCK_EX):
                self.ensure_root()

    def ensure_root(self) -> None:
        """Give a ledger with no ``root`` one (hold ``lock`` exclusive).

        A crash between the two renames of a legacy migration without ``renameat2`` leaves
        ``root`` missing and a complete view: point at the newest view rather than a new one.
        """
        if self.current() is not None:
            return
        finished = self.finished_views()
        if finished:
            self.point_root(finished[-1])
            return
        self.views.mkdir(parents=True, exist_ok=True)
        view = self.views / self.next_view_name()
        view.mkdir()
        fsync_dir(self.views)
        self.point_root(view)

    def ensure_root_if_views(self) -> None:
        """Repair a root lost mid-migration (hold ``lock`` exclusive); a new ledger stays
        without one until its first append."""
        if self.current() is None and self.finished_views():
            self.ensure_root()

    def finished_views(self) -> list[Path]:
        if not self.views.is_dir():
            return []
        named = [(view_generation(p.name), p) for p in self.views.iterdir()]
        return [p for g, p in sorted((g, p) for g, p in named if g is not None)]

    def next_view_name(self) -> str:
        views = self.finished_views()
        last = view_generation(views[-1].name) if views else 0
        return f"{VIEW_PREFIX}{(last or 0) + 1:08d}-{int(time.time() * 1000)}"

    def temp_view(self) -> Path:
        self.views.mkdir(parents=True, exist_ok=True)
        path = self.views / f"{TEMP_VIEW_PREFIX}{secrets.token_hex(6)}"
        path.mkdir()
        return path

    def point_root(self, view: Path) -> None:
        """Make ``root`` the symlink to ``view``, replacing the previous link in one rename."""
        swap = self.root.parent / f".{self.root.name}.swap-{secrets.token_hex(6)}"
        os.symlink(os.path.relpath(view, self.root.parent), swap)
        if self.is_legacy():
            self._replace_legacy_root(swap)
        else:
            os.replace(swap, self.root)
        fsync_dir(self.root.parent)

    def _replace_legacy_root(self, swap: Path) -> None:
        # Every file of the legacy directory is already hard-linked into the view.
        if _exchange(swap, self.root):
            self._remove_tree(swap)  # now the legacy directory
            return
        # No atomic exchange: for an instant the ledger has no root (readers see no files,
        # never a file twice); a crash here is repaired by ensure_root().
        aside = self.store / f"legacy-{secrets.token_hex(6)}"
        os.rename(self.root, aside)
        os.replace(swap, self.root)
        self._remove_tree(aside)

    @staticmethod
    def _remove_tree(path: Path) -> None:
        import shutil

        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)

    def collect_garbage(self, grace_s: float, now_ms: int | None = None) -> int:
        """Delete what no reader can be using (hold the compactor lock). Returns the count.

        Unfinished views (a compactor died), finished views newer than the current one (it
        died between the rename and the swap), and views superseded more than ``grace_s``
        ago (a reader that resolved the link before the swap keeps reading until then).
        """
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        removed = 0
        for leftover in self.root.parent.glob(f".{self.root.name}.swap-*"):
            self._remove_tree(leftover)
            removed += 1
        for leftover in self.store.glob("legacy-*"):
            self._remove_tree(leftover)
            removed += 1
        if not self.views.is_dir():
            return removed
        for path in self.views.iterdir():
            if path.name.startswith(TEMP_VIEW_PREFIX):
                self._remove_tree(path)
                removed += 1
        current = self.current()
        if current is None or self.is_legacy():
            return removed
        current_gen = view_generation(current.name) or 0
        views = self.finished_views()
        for index, view in enumerate(views):
            gen = view_generation(view.name) or 0
            if gen > current_gen:
                self._remove_tree(view)
                removed += 1
            elif gen < current_gen:
                successor = views[index + 1]
                if now_ms - view_created_ms(successor.name) >= grace_s * 1000:
                    self._remove_tree(view)
                    removed += 1
        return removed
