"""Multi-agent envs (PettingZoo's ParallelEnv API), agent-to-policy mapping and the multi-agent EnvRunner."""
