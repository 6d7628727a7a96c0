"""`hydra/launcher=ray`: each sweep job a Ray task on one cluster (the implementation is `_core`)."""
