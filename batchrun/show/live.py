"""Rich's progress bar with the running figures under it: loaded only when a terminal shows it, so
a cron run or --quiet never imports Rich's live display."""

from __future__ import annotations

from typing import Any

from rich.progress import Progress
from rich.text import Text

from batchrun.show.progress import pack_lines


class StatusProgress(Progress):
    """Rich progress with the running figures under the bar (Rich's documented get_renderables
    hook), packed into lines of the terminal's width at each refresh: nothing is cut off."""

    status: list[str] = []  # noqa: RUF012 (replaced whole, never mutated)

    def get_renderables(self) -> Any:
        yield self.make_tasks_table(self.tasks)
        width = self.live.console.width if hasattr(self, "live") else 80  # Rich renders once in __init__
        for line in pack_lines(self.status, width):
            yield Text(line, no_wrap=True, overflow="ignore")
