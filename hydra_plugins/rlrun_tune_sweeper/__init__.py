"""`hydra/sweeper=tune`: rlrun studies on Ray Tune (the implementation is rlrun/tune/sweeper.py)."""
