"""A consistent copy of the embedded store, taken while `fleetlog serve` goes on writing, and
put back in place once fleetlog is stopped.

SQLite's online backup API copies the database in one step, inside one read transaction: in
WAL mode the writer is not blocked meanwhile, and the copy holds exactly the transactions
committed when the step began. Every log answered 2xx before the backup started is in it,
since the embedded store answers only after its group commit. The copy is written beside the
target and renamed into place once synced, so a crash never leaves half a backup under the
target's name.
"""

import os
import sqlite3
from pathlib import Path

from fleetlog.store.sqlite_writer import BUSY_TIMEOUT_MS


class BackupRefused(ValueError):
    """The backup cannot be taken as asked; the message says why."""


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the database at `source` to the new file `target`; returns the logs it holds."""
    if not source.exists():
        raise BackupRefused(f"no embedded store at {source}")
    if target.exists():
        raise BackupRefused(f"{target} exists already; fleetlog never overwrites a backup")
    if not target.parent.is_dir():
        raise BackupRefused(f"no directory {target.parent} to write the backup in")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        logs = copy_database(source, partial)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupRefused(f"the backup failed, and nothing was written: {exc}") from exc
    with partial.open("rb") as written:
        os.fsync(written.fileno())
    partial.rename(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return logs


def copy_database(source: Path, target: Path) -> int:
    live = sqlite3.connect(source)
    copy = sqlite3.connect(target)
    try:
        live.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        live.backup(copy)
        # The copy stands alone: no -wal file beside it to lose on the way to its medium.
        copy.execute("PRAGMA journal_mode=DELETE")
        (logs,) = copy.execute("SELECT count(*) FROM logs").fetchone()
    finally:
        copy.close()
        live.close()
    return int(logs)


def restore_sqlite(copy: Path, target: Path) -> int:
    """Put the backup `copy` in place of the database at `target`; returns the logs restored.

    It goes through SQLite, not the file system: the WAL beside `target` is rewritten with the
    pages, never left over to be applied to them. The database is held exclusively meanwhile,
    which a running fleetlog's open connections prevent: then it refuses.
    """
    if not copy.exists():
        raise BackupRefused(f"no backup at {copy}")
    source = sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)
    try:
        logs = count_logs(source, copy)
        target.parent.mkdir(parents=True, exist_ok=True)
        live = sqlite3.connect(target, timeout=0, isolation_level=None)
        try:
            hold_exclusively(live, target)
            source.backup(live)
        finally:
            live.close()
    finally:
        source.close()
    return logs


def count_logs(backup: sqlite3.Connection, path: Path) -> int:
    try:
        if backup.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupRefused(f"{path} is damaged (PRAGMA quick_check)")
        (logs,) = backup.execute("SELECT count(*) FROM logs").fetchone()
    except sqlite3.DatabaseError:
        raise BackupRefused(f"{path} is not a backup of fleetlog") from None
    return int(logs)


def hold_exclusively(db: sqlite3.Connection, path: Path) -> None:
    """Lock the database for this connection alone until it closes (in exclusive locking
    mode a transaction's locks are kept after it); refuse if another connection has it."""
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    try:
        db.execute("BEGIN EXCLUSIVE")
        db.execute("COMMIT")
    except sqlite3.OperationalError:
        raise BackupRefused(f"fleetlog has {path} open: stop it before restoring") from None
