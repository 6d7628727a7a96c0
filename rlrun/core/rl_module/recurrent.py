"""The catalog's recurrent core (`model.use_lstm`, `model.use_gru`): memory between the encoder and the heads.

A recurrent network is the catalog's encoder and hidden layers (MLP or CNN torso), then an LSTM or GRU of
`model.lstm_cell_size` units, then a linear head, as RLlib's catalog builds it (CleanRL's
`ppo_atari_lstm.py`: CNN -> LSTM -> heads). Its state is one float vector per env copy: an LSTM's `h` and
`c` side by side, a GRU's `h`. Env runners carry that vector from step to step and start each episode
from zeros; learners replay sequences from the vector the runner recorded at their first step
(rlrun/core/learner/sequences.py).

With `model.lstm_use_prev_action` / `lstm_use_prev_reward` (RLlib's keys) the core also reads the previous
step's action and reward (`Columns.PREV_ACTIONS` / `PREV_REWARDS`, zeros at an episode's first step), which
env runners record for every row as they record the state: the core's input is then the encoder's features
followed by those.

Shapes: a network takes observations `[N, L, ...]` (N sequences of L steps) and a state `[N, S]`, and
returns outputs `[N, L, out]` and the state after the last step, `[N, S]`. A sampling step is `L = 1`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from rlrun.core.columns import Columns
from rlrun.core.rl_module.catalog import Catalog, orthogonal
from rlrun.core.rl_module.structured_encoder import part_encoder


class RecurrentCore(nn.Module):
    """An LSTM or GRU over `[N, L, in_dim]` features, from and to one flat state vector per sequence."""

    def __init__(self, in_dim: int, cell_size: int, cell: str = "lstm") -> None:
        super().__init__()
        self.lstm = cell == "lstm"
        self.rnn = (nn.LSTM if self.lstm else nn.GRU)(in_dim, cell_size, batch_first=True)
        self.out_dim = cell_size
        self.state_size = 2 * cell_size if self.lstm else cell_size
        # CleanRL's initialisation of its LSTM: orthogonal weights (gain 1), zero biases.
        for name, param in self.rnn.named_parameters():
            if "bias" in name:
                nn.init.zeros_(param)
            else:
                nn.init.orthogonal_(param, 1.0)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1] == 1:
            return self._step(x[:, 0], state)
        if self.lstm:
            h, c = (part.unsqueeze(0).contiguous() for part in state.chunk(2, dim=-1))
            y, (h, c) = self.rnn(x, (h, c))
            return y, torch.cat([h[0], c[0]], dim=-1)
        y, h = self.rnn(x, state.unsqueeze(0).contiguous())
        return y, h[0]

    def _step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step (an env runner's): the cell function on the layer's own weights, a third of `nn.LSTM`'s
        per-call cost on a sampling batch, with the same result to float rounding."""
        weights = (self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.rnn.bias_ih_l0, self.rnn.bias_hh_l0)
        if self.lstm:
            h, c = torch.lstm_cell(x, state.chunk(2, dim=-1), *weights)
            return h[:, None], torch.cat([h, c], dim=-1)
        h = torch.gru_cell(x, state, *weights)
        return h[:, None], h


class PreviousStep(nn.Module):
    """The previous action (one-hot for Discrete and MultiDiscrete, as floats otherwise) and reward, as the
    model keys ask, from `[N, L, ...]` columns to `[N, L, out_dim]` core inputs (`out_dim` 0: neither)."""

    def __init__(self, action_space: gym.Space, model_config: Mapping[str, Any]) -> None:
        super().__init__()
        self.columns = [column for column, asked in ((Columns.PREV_ACTIONS, model_config.get("lstm_use_prev_action")),
                                                     (Columns.PREV_REWARDS, model_config.get("lstm_use_prev_reward")))
                        if asked]
        self.action = part_encoder(action_space, model_config) if Columns.PREV_ACTIONS in self.columns else None
        self.out_dim = (self.action.out_dim if self.action is not None else 0) + (Columns.PREV_REWARDS in self.columns)

    def forward(self, batch: Mapping[str, torch.Tensor], n: int, length: int) -> torch.Tensor:
        parts = []
        if self.action is not None:
            actions = batch[Columns.PREV_ACTIONS]
            parts.append(self.action(actions.reshape(n * length, *actions.shape[2:])).reshape(n, length, -1))
        if Columns.PREV_REWARDS in self.columns:
            parts.append(batch[Columns.PREV_REWARDS].reshape(n, length, 1).float())
        return torch.cat(parts, dim=-1)


class RecurrentNetwork(nn.Module):
    """encoder -> hidden layers -> recurrent core (also reading the previous step's action and reward where the
    model keys ask) -> linear head (`out_dim` 0: no head, the core's output)."""

    def __init__(self, catalog: Catalog, action_space: gym.Space, out_dim: int, out_gain: float) -> None:
        super().__init__()
        self.torso, features = catalog.build_torso()
        self.previous = PreviousStep(action_space, catalog.config)
        self.core = RecurrentCore(features + self.previous.out_dim, recurrent_cell_size(catalog.config),
                                  recurrent_cell(catalog.config))
        self.head = orthogonal(nn.Linear(self.core.out_dim, out_dim), out_gain) if out_dim else nn.Identity()
        self.out_dim = out_dim or self.core.out_dim
        self.state_size = self.core.state_size

    def forward(self, batch: Mapping[str, torch.Tensor], state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch`: `[N, L, ...]` observations and, as asked, the previous actions and rewards."""
        obs = batch[Columns.OBS]
        n, length = obs.shape[:2]
        features = self.torso(obs.reshape(n * length, *obs.shape[2:])).reshape(n, length, -1)
        if self.previous.out_dim:
            features = torch.cat([features, self.previous(batch, n, length)], dim=-1)
        y, state = self.core(features, state)
        return self.head(y), state


def is_recurrent(model_config: dict) -> bool:
    """Whether the `model` keys ask for a recurrent core."""
    return bool(model_config.get("use_lstm") or model_config.get("use_gru"))


def recurrent_cell(model_config: dict) -> str:
    return "gru" if model_config.get("use_gru") else "lstm"


def recurrent_cell_size(model_config: dict) -> int:
    return int(model_config.get("lstm_cell_size") or 256)

