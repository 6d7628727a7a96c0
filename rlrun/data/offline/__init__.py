"""Offline data: Minari datasets recorded from a policy (`rlrun-eval ... record=`) and streamed to learners
in bounded memory (BC, MARWIL)."""
