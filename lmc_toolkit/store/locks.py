"""Lock files that work across processes and machines sharing one folder (a run store on a
shared filesystem): `RunLock`, with a heartbeat so that a dead holder's lock is broken."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

#: A lock whose heartbeat is older than this many seconds is stale (its holder is gone).
LOCK_STALE_SECONDS = 60.0


def host_name() -> str:
    """This machine's name, safe for file names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """A lock file that works across processes and machines on a shared filesystem.

    Acquiring creates `path` with `O_CREAT | O_EXCL` (atomic, also over NFS v3+) holding the
    holder's host, pid and a token; while held, a heartbeat thread touches it every
    `stale_after / 4` seconds. A lock is stale, and broken by the next process that wants it,
    when its heartbeat is older than `stale_after` seconds or its holder's pid is dead on this
    host. Breaking re-reads the token first, so a lock taken over in the meantime is kept.
    """

    def __init__(self, path: str | Path, stale_after: float = LOCK_STALE_SECONDS):
        self.path = Path(path)
        self.stale_after = float(stale_after)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"RunLock({str(self.path)!r})"

    def _read(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) else None

    def stale(self) -> bool:
        """Whether the lock file (if any) belongs to a holder that is gone."""
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        if age > self.stale_after:
            return True
        record = self._read()
        if record is None:  # being written right now, or garbage: judge it by its age only
            return False
        pid = record.get("pid")
        return record.get("host") == host_name() and isinstance(pid, int) and not _pid_alive(pid)

    def try_acquire(self) -> bool:
        """Take the lock if it is free (breaking a stale one); never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._break_stale():
                    return False
                continue
            record = {"host": host_name(), "pid": os.getpid(), "time": time.time()}
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({**record, "token": self.token}))
            self._start_heartbeat()
            return True
        return False

    def acquire(self, timeout: float | None = None, poll: float = 0.1) -> None:
        """Wait for the lock (for ever, or `timeout` seconds, then `TimeoutError`)."""
        start = time.monotonic()
        while not self.try_acquire():
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"{self.path} is held by {self._read()} after {timeout} s")
            time.sleep(poll)
            poll = min(poll * 1.5, 1.0)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        record = self._read()
        if record is not None and record.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def _break_stale(self) -> bool:
        if not self.stale():
            return False
        record = self._read()
        grave = self.path.with_name(f"{self.path.name}.broken-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:
            return True  # someone else removed it: try again
        moved = None
        with suppress(OSError, json.JSONDecodeError, UnicodeDecodeError):
            moved = json.loads(grave.read_text())
        if record is not None and moved != record:
            # a fresh lock was taken between our check and the rename: put it back
            with suppress(FileExistsError):
                os.link(grave, self.path)
        grave.unlink(missing_ok=True)
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        interval = max(self.stale_after / 4, 0.05)

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    os.utime(self.path)
                except FileNotFoundError:
                    return

        self._beat = threading.Thread(target=beat, name=f"lock {self.path.name}", daemon=True)
        self._beat.start()
