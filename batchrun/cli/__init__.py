"""The command line: `app` with one module per command group, registered on import."""

from batchrun.cli import batches, export, inspect, process, providers, simulate  # noqa: F401  (registers the commands)
from batchrun.cli.app import app, main

__all__ = ["app", "main"]
