"""The live display as a person sees it on an 80-column terminal: a real pty, a real process, and
a terminal emulator (pyte) replaying what it printed. Nothing is cut: not the canary's line, not
the figures after it, not a model's limits, not the message a Ctrl-C prints."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte

from .conftest import plain_records, write_jsonl
from .test_migration import KEYS, toml
from .test_resume import env

COLS, ROWS = 80, 400  # tall: nothing scrolls off what the emulator keeps


def _screen_text(screen: pyte.Screen) -> str:
    """The screen's text with the terminal's own wraps undone (a full row continues on the next)."""
    rows = [row.rstrip() for row in screen.display]
    out = []
    for raw, row in zip(screen.display, rows, strict=True):
        out.append(row if len(raw.rstrip()) == COLS else row + "\n")
    return "".join(out)


def test_at_80_columns_nothing_of_the_live_display_is_cut(tmp_path: Path, sim_factory) -> None:
    old = sim_factory(api_key=KEYS["OLD_KEY"], latency_ms=200)
    new = sim_factory(api_key=KEYS["NEW_KEY"], latency_ms=200)
    cfg = toml(tmp_path, old.url, new.url, '[canary]\nmodel = "new/deepseek-chat"\nshare = 0.5\nwindow = 50\n')
    inp = write_jsonl(tmp_path / "in.jsonl", plain_records(400))
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    e = env(**KEYS, COLUMNS=str(COLS), LINES=str(ROWS), TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "batchrun", "process", str(inp), "--config", str(cfg),
                             "--model", "old/gpt-4o-mini", "--concurrency", "4"],
                            stdin=follower, stdout=follower, stderr=follower, env=e, cwd=tmp_path)
    os.close(follower)
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    interrupted = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    data = os.read(leader, 1 << 16)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not data:
                    break
                stream.feed(data)
            if not interrupted and "in flight" in _screen_text(screen) and "canary running" in _screen_text(screen):
                proc.send_signal(signal.SIGINT)  # the live display is up, with the canary's line
                interrupted = True
            elif proc.poll() is not None and not ready:
                break
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    assert interrupted and proc.returncode == 130
    text = _screen_text(screen)
    assert "Ctrl-C again to stop at once)" in text, text  # the stop message, whole
    end = text.index("batchrun summary")
    frame = text[text.rindex("/400 ", 0, end):end]  # the live display's last frame: the bar and its figures
    for figure in ("canary running (50%)", "tokens ", " out", "cost $", "retries ", "errors ", "in flight ",
                   "limits old/gpt-4o-mini: limit not stated, unpaced, 0 x 429",
                   "limits new/deepseek-chat: limit not stated, unpaced, 0 x 429"):
        assert figure in frame, (figure, frame)
    assert "to resume, run: batchrun process" in text and "--concurrency 4" in text
