"""The command line: `app` with one module per command group, each registering its commands when
the app's group first needs them (cli/app.COMMANDS)."""

from batchrun.cli.app import app, main

__all__ = ["app", "main"]
