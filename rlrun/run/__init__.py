"""The run directory: experiment loop, metrics recorder, console display, checkpoints, plots."""
