"""`rlrun-report`: compare runs and sweeps from their metrics.jsonl files.

Only `metrics.jsonl` (and Hydra's `.hydra/` files, when present) are read, so
the report also works on run directories written by older rlrun versions.
"""
