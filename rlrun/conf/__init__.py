"""Hydra config files (YAML) shipped inside the package."""
