"""Training-only signals of Atari: a lost life ends the training episode, rewards are clipped to their sign.

Mnih et al. (2015) train with both, and CleanRL and SB3 do them with env wrappers (EpisodicLifeEnv,
ClipRewardEnv). Wrappers change the episodes the env reports, though: a life loss would reset the game,
and the returns logged would be clipped, partial games. rlrun keeps the env playing whole games and derives
the signals from the env's own output, in the env runner, for the batch only:

- a step on which `info["lives"]` drops while the game goes on gets `terminateds = True` in the batch, and
  the next row stays a live step of the same game (`loss_mask = 1`): learners bootstrap nothing across the
  lost life (GAE, V-trace and n-step windows all stop at a terminated row), yet the game is not reset;
- the batch's rewards are `sign(reward)`.

The episode returns and lengths the runner reports (`episode_return_mean`, evaluation) are the env's:
whole games, unclipped scores. Evaluation plays with these signals off.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlrun.env.env_spec import EnvSpec


class TrainingSignals:
    """Per sub-env lives, turning one vector-env step's output into the batch's rewards and terminateds."""

    def __init__(self, num_envs: int, *, terminal_on_life_loss: bool, clip_rewards: bool) -> None:
        self.terminal_on_life_loss = terminal_on_life_loss
        self.clip_rewards = clip_rewards
        # Lives each sub-env had after its previous step (or reset); -1 = unknown (the env reports none).
        self.lives = np.full(num_envs, -1, dtype=np.int64)

    @classmethod
    def from_spec(cls, spec: EnvSpec, num_envs: int) -> TrainingSignals | None:
        """The signals `spec.atari` asks for; None when there are none (no Atari preprocessing, or both off)."""
        atari = spec.atari
        if atari is None or not (atari.terminal_on_life_loss or atari.clip_rewards):
            return None
        return cls(num_envs, terminal_on_life_loss=atari.terminal_on_life_loss, clip_rewards=atari.clip_rewards)

    def reset(self, infos: dict[str, Any]) -> None:
        """Every sub-env started a new game; `infos` is the vector env's reset info."""
        self.lives[:] = _lives(infos, len(self.lives))

    def step(
        self, rewards: np.ndarray, terminateds: np.ndarray, infos: dict[str, Any], live: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The batch's (rewards, terminateds) of one step; `live` marks real steps (not autoreset rows, whose
        info already belongs to the next game: their lives are taken as its start)."""
        if self.clip_rewards:
            rewards = np.sign(rewards).astype(np.float32)
        lives = _lives(infos, len(self.lives))
        if self.terminal_on_life_loss:
            lost = live & (lives >= 0) & (lives < self.lives)
            terminateds = terminateds | lost
        self.lives = lives
        return rewards, terminateds

    def get_state(self) -> dict[str, Any]:
        return {"lives": self.lives.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        lives = np.array(state["lives"], dtype=np.int64)
        if lives.shape != self.lives.shape:
            raise ValueError(f"training-signal state for {len(lives)} sub-envs, this runner has {len(self.lives)}")
        self.lives = lives


def _lives(infos: dict[str, Any], num_envs: int) -> np.ndarray:
    """Each sub-env's `lives` from a vector env's info (gymnasium's: `lives` with the `_lives` mask; envpool's:
    `lives`), -1 where a sub-env reports none."""
    lives = np.full(num_envs, -1, dtype=np.int64)
    if "lives" in infos:
        values = np.asarray(infos["lives"])
        reported = np.asarray(infos.get("_lives", np.ones(num_envs, dtype=bool)), dtype=bool)
        lives[reported] = values[reported]
    return lives
