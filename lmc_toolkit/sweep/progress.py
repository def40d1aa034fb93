"""The progress bar of a sweep: units done, running and failed."""

from __future__ import annotations

import time

from tqdm.auto import tqdm


class Progress:
    """A bar over units with `done`, `running` and `failed` counts."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = tqdm(total=total, desc=desc, disable=not enabled, unit="unit")
        self.done = self.failed = self.running = 0
        self._shown = 0.0

    def update(
        self, *, done: int = 0, failed: int = 0, running: int | None = None, force: bool = False
    ):
        self.done += done
        self.failed += failed
        if running is not None:
            self.running = running
        self.bar.update(done + failed)
        now = time.monotonic()
        if force or now - self._shown > 0.2 or done + failed:
            self.bar.set_postfix(done=self.done, running=self.running, failed=self.failed)
            self._shown = now

    def close(self) -> None:
        self.bar.set_postfix(done=self.done, running=0, failed=self.failed)
        self.bar.close()
