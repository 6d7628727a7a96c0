"""Batch postprocessing shared by algorithms."""
