"""Rich's progress bar with a status line under it: loaded only when a terminal shows it, so a
cron run or --quiet never imports Rich's live display."""

from __future__ import annotations

from typing import Any

from rich.progress import Progress
from rich.text import Text


class StatusProgress(Progress):
    """Rich progress with a plain status line under the bar (Rich's documented get_renderables hook)."""

    status = ""

    def get_renderables(self) -> Any:
        yield self.make_tasks_table(self.tasks)
        if self.status:
            yield Text(self.status, overflow="fold")
