"""batchrun: push a JSONL file of LLM work through an OpenAI-compatible API."""

__version__ = "0.1.0"
