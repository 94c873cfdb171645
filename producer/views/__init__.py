"""What every `--json` of the CLI prints: one pydantic model per document, each field described.

These models are the one home of the JSON: the CLI prints `to_json(view)`. A module per CLI
module (sending, config, ...); base.py holds what they share.
"""
