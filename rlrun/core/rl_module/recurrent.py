"""The catalog's recurrent core (`model.use_lstm`, `model.use_gru`): memory between the encoder and the heads.

A recurrent network is the catalog's encoder and hidden layers (MLP or CNN torso), then an LSTM or GRU of
`model.lstm_cell_size` units, then a linear head, as RLlib's catalog builds it (CleanRL's
`ppo_atari_lstm.py`: CNN -> LSTM -> heads). Its state is one float vector per env copy: an LSTM's `h` and
`c` side by side, a GRU's `h`. Env runners carry that vector from step to step and start each episode
from zeros; learners replay sequences from the vector the runner recorded at their first step
(rlrun/core/learner/sequences.py).

Shapes: a network takes observations `[N, L, ...]` (N sequences of L steps) and a state `[N, S]`, and
returns outputs `[N, L, out]` and the state after the last step, `[N, S]`. A sampling step is `L = 1`.
"""

from __future__ import annotations

import torch
from torch import nn

from rlrun.core.rl_module.catalog import Catalog, orthogonal


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
        if self.lstm:
            h, c = (part.unsqueeze(0).contiguous() for part in state.chunk(2, dim=-1))
            y, (h, c) = self.rnn(x, (h, c))
            return y, torch.cat([h[0], c[0]], dim=-1)
        y, h = self.rnn(x, state.unsqueeze(0).contiguous())
        return y, h[0]


class RecurrentNetwork(nn.Module):
    """encoder -> hidden layers -> recurrent core -> linear head (`out_dim` 0: no head, the core's output)."""

    def __init__(self, catalog: Catalog, out_dim: int, out_gain: float) -> None:
        super().__init__()
        self.torso, features = catalog.build_torso()
        self.core = RecurrentCore(features, recurrent_cell_size(catalog.config), recurrent_cell(catalog.config))
        self.head = orthogonal(nn.Linear(self.core.out_dim, out_dim), out_gain) if out_dim else nn.Identity()
        self.out_dim = out_dim or self.core.out_dim
        self.state_size = self.core.state_size

    def forward(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, length = obs.shape[:2]
        features = self.torso(obs.reshape(n * length, *obs.shape[2:])).reshape(n, length, -1)
        y, state = self.core(features, state)
        return self.head(y), state


def is_recurrent(model_config: dict) -> bool:
    """Whether the `model` keys ask for a recurrent core."""
    return bool(model_config.get("use_lstm") or model_config.get("use_gru"))


def recurrent_cell(model_config: dict) -> str:
    return "gru" if model_config.get("use_gru") else "lstm"


def recurrent_cell_size(model_config: dict) -> int:
    return int(model_config.get("lstm_cell_size") or 256)

