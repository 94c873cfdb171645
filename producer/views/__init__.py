"""What every `--json` of the CLI prints: one pydantic model per document, each field described.

These models are the one home of the JSON. The CLI prints `to_json(view)`, docs/json.md is
generated from their schemas (`python -m stickerq.cli.json_docs`), and tests validate what the
commands print against them. A module per CLI module: sending, schedules, campaigns, reports,
failures, config; base.py holds what they share.
"""
