"""The model catalog: every module's networks are built here from the observation space and the `model` keys.

A network is an *encoder* (what turns one observation into a feature vector) followed by an MLP of
`model.hiddens` and a linear head. The catalog picks the encoder from the observation space, as RLlib's
Catalog and SB3's `CnnPolicy` do:

- a vector (any Box that is not image-shaped): flattened, so the MLP sees it as it is;
- an image (a 3-d Box, channels first `(C, H, W)` or last `(H, W, C)`, or a 2-d uint8 Box as one grey
  channel): a CNN, `model.cnn` (`nature`: Mnih et al. 2015; `impala`: the residual network of Espeholt
  et al. 2018; `small`: three 2x2 convolutions for tiny views such as MiniGrid's; null picks `nature`
  for images of 36x36 and more, else `small`, as RLlib picks filters by image size) or the explicit
  `model.conv_filters`, then its dense layer;
- a structured observation (Dict, Tuple, Discrete, ... packed into a PackedSpace by the env wrapper): one
  encoder per part, concatenated (rlrun/core/rl_module/structured_encoder.py).

Observations reach the networks in the env's dtype (uint8 frames stay uint8 through sampling, replay and
Ray's object store); the encoder makes them float on whatever device it runs on, and scales uint8 pixels
by 1/255 there. Algorithms ask the catalog for encoders and heads (`Catalog.build_encoder`,
`Catalog.build_network`), never build layer stacks of their own, so one seam decides every network; a
user's own encoder (`model.encoder`, rlrun/core/rl_module/custom.py) plugs in at `build_encoder`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrun.core.packed_space import PackedSpace

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}
# MLP layers when `model.hiddens` is null: two small layers for vectors (the classic-control default of
# CleanRL and SB3), none on top of a CNN, whose own dense layer is the torso (Nature DQN, CleanRL's Atari PPO).
VECTOR_HIDDENS: tuple[int, ...] = (64, 64)
# Named CNNs: conv layers `(out_channels, kernel, stride)` and the units of the dense layer after them.
# `small` is the CNN of rl-starter-files for MiniGrid's 7x7 view (three 2x2 convolutions, without its max-pool).
CNN_FILTERS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
    "small": ((16, 2, 1), (32, 2, 1), (64, 2, 1)),
}
CNN_DENSE: dict[str, int] = {"nature": 512, "impala": 256, "small": 0, "conv_filters": 0}
# With `model.cnn: null`, images at least this large (both sides) get `nature`, smaller ones `small`, and
# those smaller than `small` takes (a 3x3 board game) one convolution over the whole image, of this many channels.
NATURE_MIN_SIZE = 36
SMALL_MIN_SIZE = 4
WHOLE_IMAGE_CHANNELS = 64
IMPALA_CHANNELS: tuple[int, ...] = (16, 32, 32)
# uint8 observations are pixels in [0, 255]; the networks see them in [0, 1].
PIXEL_SCALE = 1.0 / 255.0


class ModelError(ValueError):
    """A `model` setting that does not fit the observation space (AlgorithmConfig.validate reports it)."""


def is_image(space: gym.Space) -> bool:
    """Whether the catalog builds a CNN for `space`: a 3-d Box, or a 2-d uint8 Box (one grey channel)."""
    if not isinstance(space, gym.spaces.Box):
        return False
    return len(space.shape) == 3 or (len(space.shape) == 2 and space.dtype == np.uint8)


def image_layout(shape: Sequence[int]) -> tuple[int, int, int, bool]:
    """`(channels, height, width, channels_last)` of an image observation shape.

    Channels are the short axis: `(4, 84, 84)` (stacked Atari frames) is channels first, `(7, 7, 3)`
    (MiniGrid) and `(84, 84, 3)` (RGB renders) channels last. A 2-d shape is one channel.
    """
    if len(shape) == 2:
        return 1, int(shape[0]), int(shape[1]), True
    first, height, last = (int(s) for s in shape)
    if last < first:
        return last, first, height, True
    return first, height, last, False


def pixels_to_float(x: torch.Tensor) -> torch.Tensor:
    """`x` as float32: uint8 pixels scaled to [0, 1], anything else as it is.

    The tensor's dtype decides, not the space's: with env_runners.observation_filter=MeanStdFilter a uint8
    space's frames arrive filtered, as float32, and must not be scaled again.
    """
    return x.float() * PIXEL_SCALE if x.dtype == torch.uint8 else x.float()


def orthogonal(layer: nn.Linear | nn.Conv2d, gain: float) -> nn.Linear | nn.Conv2d:
    """Orthogonal weights with `gain`, zero bias: CleanRL's and SB3's initialisation for policy networks."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def hidden_stack(in_dim: int, hiddens: Sequence[int], activation: str) -> nn.Sequential:
    """Linear + activation layers, orthogonal init with gain sqrt(2) as in CleanRL."""
    layers: list[nn.Module] = []
    for size in hiddens:
        layers += [orthogonal(nn.Linear(in_dim, size), np.sqrt(2)), ACTIVATIONS[activation]()]
        in_dim = size
    return nn.Sequential(*layers)


def mlp(in_dim: int, hiddens: Sequence[int], out_dim: int, activation: str, out_gain: float) -> nn.Sequential:
    """Hidden stack plus a linear head with a small `out_gain` (0.01 for policies)."""
    head = orthogonal(nn.Linear(hiddens[-1] if hiddens else in_dim, out_dim), out_gain)
    return hidden_stack(in_dim, hiddens, activation).append(head)


class Encoder(nn.Module):
    """One observation -> a feature vector of `out_dim` floats, on the device the encoder lives on."""

    out_dim: int


class FlattenEncoder(Encoder):
    """Vectors: the observation as floats, flattened (the MLP after it does the work)."""

    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__()
        self.out_dim = int(np.prod(space.shape))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.flatten(1).float()


class ResidualBlock(nn.Module):
    """IMPALA's residual block: x + conv(relu(conv(relu(x))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


def impala_stack(in_channels: int, channels: Sequence[int] = IMPALA_CHANNELS) -> nn.Sequential:
    """Espeholt et al. 2018, fig. 3 (right): per stage conv 3x3, max-pool 3x3 stride 2, two residual blocks."""
    layers: list[nn.Module] = []
    for out in channels:
        layers += [nn.Conv2d(in_channels, out, 3, padding=1), nn.MaxPool2d(3, stride=2, padding=1),
                   ResidualBlock(out), ResidualBlock(out)]
        in_channels = out
    return nn.Sequential(*layers, nn.ReLU())


def conv_stack(in_channels: int, filters: Sequence[Sequence[Any]]) -> nn.Sequential:
    """Conv + ReLU per `[out_channels, kernel, stride]` (RLlib's `conv_filters`), no padding, orthogonal init."""
    layers: list[nn.Module] = []
    for out, kernel, stride in filters:
        layers += [orthogonal(nn.Conv2d(in_channels, int(out), _pair(kernel), int(stride)), np.sqrt(2)), nn.ReLU()]
        in_channels = int(out)
    return nn.Sequential(*layers)


def _pair(kernel: int | Sequence[int]) -> tuple[int, int]:
    return (int(kernel), int(kernel)) if isinstance(kernel, int) else (int(kernel[0]), int(kernel[1]))


class CNNEncoder(Encoder):
    """Images: uint8 pixels scaled to [0, 1] (float ones taken as they are), channels moved first, a conv stack,
    then an optional dense layer."""

    def __init__(self, space: gym.spaces.Box, convs: nn.Sequential, conv_out: int, dense: int) -> None:
        super().__init__()
        self.channels, self.height, self.width, self.channels_last = image_layout(space.shape)
        self.convs = convs
        self.dense = (nn.Sequential(orthogonal(nn.Linear(conv_out, dense), np.sqrt(2)), nn.ReLU()) if dense
                      else nn.Identity())
        self.out_dim = dense or conv_out

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = pixels_to_float(obs)
        x = x.reshape(-1, self.height, self.width, self.channels) if self.channels_last else x.reshape(
            -1, self.channels, self.height, self.width)
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.dense(self.convs(x).flatten(1))


class Network(nn.Module):
    """encoder -> (features, plus optional extra inputs such as SAC's action or MAPPO's state) -> MLP head."""

    def __init__(self, encoder: Encoder, head: nn.Sequential) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, obs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        features = self.encoder(obs)
        if extra is not None:  # uint8 extras (MAPPO's state of pixel agents) are pixels, scaled as the encoder's
            features = torch.cat([features, pixels_to_float(extra.flatten(1))], dim=-1)
        return self.head(features)


class Catalog:
    """Builds the encoders and networks of one observation space from the `model` keys.

    Keys read: `hiddens` (null = VECTOR_HIDDENS for vectors, none after a CNN), `activation`, `cnn` (null =
    by image size), `conv_filters`, `cnn_dense` (null = the CNN's own: CNN_DENSE).
    """

    def __init__(self, observation_space: gym.Space, model_config: Mapping[str, Any]) -> None:
        self.observation_space = observation_space
        self.config = dict(model_config)
        self.image = is_image(observation_space)
        # Dict, Tuple, Discrete, ... observations (rlrun/core/packed_space.py): one encoder per part.
        self.structured = isinstance(observation_space, PackedSpace)
        hiddens = self.config.get("hiddens")
        self.hiddens: list[int] = list(hiddens if hiddens is not None else ([] if self.image else VECTOR_HIDDENS))
        self.activation: str = self.config.get("activation", "tanh")

    def build_encoder(self) -> Encoder:
        """The encoder of this observation space: the user's `model.encoder` if set, else a CNN for images, a
        flatten for vectors."""
        if self.config.get("encoder"):
            from rlrun.core.rl_module.custom import build_user_encoder

            return build_user_encoder(self.observation_space, self.config)
        if self.structured:
            from rlrun.core.rl_module.structured_encoder import StructuredEncoder

            return StructuredEncoder(self.observation_space, self.config)
        if not self.image:
            return FlattenEncoder(self.observation_space)
        kind, filters, conv_out = self.conv_layout()
        channels = image_layout(self.observation_space.shape)[0]
        convs = impala_stack(channels) if kind == "impala" else conv_stack(channels, filters)
        dense = self.config.get("cnn_dense")
        return CNNEncoder(self.observation_space, convs, conv_out, CNN_DENSE[kind] if dense is None else int(dense))

    def conv_layout(self) -> tuple[str, Sequence[Sequence[Any]], int]:
        """`(kind, conv filters, flattened conv output size)` of an image space, computed without building
        (and so without drawing initial weights); ModelError when the images are too small for the CNN."""
        _, height, width, _ = image_layout(self.observation_space.shape)
        filters = self.config.get("conv_filters")
        kind = "conv_filters" if filters else (self.config.get("cnn") or (
            "nature" if min(height, width) >= NATURE_MIN_SIZE else "small"))
        if kind == "small" and not self.config.get("cnn") and min(height, width) < SMALL_MIN_SIZE:
            # A dense layer that sees every cell, as the usual MLP on a board does, keeping the network an image's.
            kind, filters = "conv_filters", ((WHOLE_IMAGE_CHANNELS, (height, width), 1),)
        if kind == "impala":
            out_h, out_w = height, width
            for _ in IMPALA_CHANNELS:
                out_h, out_w = math.ceil(out_h / 2), math.ceil(out_w / 2)
            return kind, (), IMPALA_CHANNELS[-1] * out_h * out_w
        filters = filters or CNN_FILTERS[kind]
        out_h, out_w = conv_output_size(height, width, filters, kind)
        return kind, filters, int(filters[-1][0]) * out_h * out_w

    def check(self) -> None:
        """ModelError unless the catalog can build networks for this observation space with these keys (a user's
        `model.encoder`: ConfigError unless it meets its contract)."""
        if self.config.get("encoder"):
            from rlrun.core.rl_module.custom import check_encoder

            return check_encoder(self.observation_space, self.config)
        if self.structured:
            from rlrun.core.rl_module.structured_encoder import check_structured

            return check_structured(self.observation_space, self.config)
        if not isinstance(self.observation_space, gym.spaces.Box):
            raise ModelError(f"the model catalog builds encoders for Box observations; got {self.observation_space}")
        if self.image:
            self.conv_layout()

    def build_torso(self) -> tuple[nn.Sequential, int]:
        """encoder + hidden layers, and their output size: the shared trunk of policy and value heads."""
        encoder = self.build_encoder()
        stack = hidden_stack(encoder.out_dim, self.hiddens, self.activation)
        return nn.Sequential(encoder, stack), (self.hiddens[-1] if self.hiddens else encoder.out_dim)

    def build_network(self, out_dim: int, out_gain: float, extra_inputs: int = 0) -> Network:
        """An encoder of its own, then an MLP from its features (and `extra_inputs` more) to `out_dim`."""
        encoder = self.build_encoder()
        head = mlp(encoder.out_dim + extra_inputs, self.hiddens, out_dim, self.activation, out_gain)
        return Network(encoder, head)


def conv_output_size(height: int, width: int, filters: Sequence[Sequence[Any]], kind: str) -> tuple[int, int]:
    """Height and width after unpadded convolutions; ModelError when an image is too small for them."""
    out_h, out_w = height, width
    for _, kernel, stride in filters:
        k_h, k_w = _pair(kernel)
        out_h, out_w = (out_h - k_h) // int(stride) + 1, (out_w - k_w) // int(stride) + 1
        if out_h < 1 or out_w < 1:
            key = "conv_filters" if kind == "conv_filters" else f"cnn={kind}"
            raise ModelError(f"model.{key} does not fit {height}x{width} images: the output of the conv stack "
                             "would be empty; use model.cnn=small (or null) or smaller model.conv_filters")
    return out_h, out_w


def check_conv_filters(filters: Any) -> None:
    """ModelError unless `filters` is a list of `[out_channels, kernel, stride]` with positive integers."""
    def positive(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    def valid(layer: Any) -> bool:
        if not isinstance(layer, (list, tuple)) or len(layer) != 3:
            return False
        out, kernel, stride = layer
        kernel_ok = positive(kernel) or (isinstance(kernel, (list, tuple)) and len(kernel) == 2
                                         and all(positive(k) for k in kernel))
        return positive(out) and kernel_ok and positive(stride)

    if not isinstance(filters, (list, tuple)) or not filters or not all(valid(layer) for layer in filters):
        raise ModelError(f"model.conv_filters must be a non-empty list of [out_channels, kernel, stride] with "
                         f"positive integers (kernel: k or [kh, kw]), e.g. [[16,2,1],[32,2,1]]; got {filters}")
