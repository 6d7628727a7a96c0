"""Film greedy episodes of a policy: `rgb_array` frames to an mp4 (imageio-ffmpeg) or, without an encoder, a GIF.

The evaluation statistics come from the vectorized EnvRunner; filming needs one
env with `render_mode="rgb_array"`, so it plays its own episodes here.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import traceback
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrun.config.errors import ConfigError
from rlrun.core.columns import Columns
from rlrun.core.rl_module.memory import Memory
from rlrun.env.env_creation import EnvError, has_display, headless_gl_problem, make_env
from rlrun.env.env_runner import buffer_dtype
from rlrun.env.env_spec import EnvSpec, as_env_spec
from rlrun.env.multi_agent.creation import make_parallel_env
from rlrun.env.multi_agent.turn_based import TurnBasedEnv, greedy_move
from rlrun.env.normalization import Normalizer
from rlrun.extras import install_hint


def mp4_available() -> bool:
    """True when imageio and its bundled ffmpeg (rlrun's `video` extra) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("imageio", "imageio_ffmpeg"))


def record_video(
    module: Any,
    normalizer: Normalizer,
    env: EnvSpec | str,
    episodes: int,
    seed: int,
    stem: Path,
    video_format: str = "auto",
    agent_to_module: dict[str, str] | None = None,
) -> Path:
    """Play `episodes` greedy episodes and write them to `stem` + `.mp4` / `.gif`; returns the file.

    The policy sees observations through `normalizer` (the evaluation runner's, frozen), as in training.
    A multi-agent env (`agent_to_module` given, `module` a MultiRLModule) is played as a PettingZoo env.
    `env` is the run's env spec (its Atari preprocessing and wrappers make what the policy sees; the film shows
    the game's own frames), or an env id.
    """
    if video_format == "mp4" and not mp4_available():
        raise ConfigError(f"video_format=mp4 needs imageio and imageio-ffmpeg ({install_hint('video')}); "
                          "use video_format=gif or auto")
    # Off-screen frames need no display; without this pygame's SDL complains on headless machines.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    spec = as_env_spec(env)
    env_id = spec.id
    render_config = {**spec.env_config, "render_mode": "rgb_array"}
    if agent_to_module is None:
        env = make_env(spec.replace(env_config=render_config))
        play = functools.partial(_play, module, normalizer, env)
    else:
        env = make_parallel_env(env_id, render_config)
        play_game = _play_turns if isinstance(env, TurnBasedEnv) else _play_agents
        play = functools.partial(play_game, module, agent_to_module, env)
    try:
        with warnings.catch_warnings():
            if not has_display():  # GLFW (tried first by gymnasium's MuJoCo renderer) only warns that there is none
                warnings.filterwarnings("ignore", module="glfw")
            frames = [frame for i in range(episodes) for frame in play(seed + i)]
        fps = int(env.metadata.get("render_fps") or 30)
    except Exception as e:
        problem = headless_gl_problem() if _is_opengl_error(e) else None
        if problem is None:
            raise
        raise EnvError(f"cannot film env '{env_id}' ({type(e).__name__}: {e}): {problem}") from None
    finally:
        env.close()
    stem.parent.mkdir(parents=True, exist_ok=True)
    if video_format != "gif" and mp4_available():
        return _write_mp4(frames, fps, stem.with_suffix(".mp4"))
    return _write_gif(frames, fps, stem.with_suffix(".gif"))


def _is_opengl_error(error: Exception) -> bool:
    """Whether `error` was raised inside an OpenGL stack (MuJoCo's renderers, PyOpenGL, GLFW), as on a machine
    without a usable display or off-screen backend; any other rendering error is the env's own."""
    opengl = {"mujoco", "OpenGL", "glfw"}
    return any(opengl & set(Path(frame.filename).parts) for frame in traceback.extract_tb(error.__traceback__))


def _play(module: Any, normalizer: Normalizer, env: gym.Env, seed: int) -> list[np.ndarray]:
    """The frames of one greedy episode, the initial state included; a recurrent module carries its memory."""
    dist_cls = module.get_inference_action_dist_cls()
    memory = Memory(module, 1) if module.is_stateful() else None
    obs, _ = env.reset(seed=seed)
    frames = [env.render()]
    done = False
    while not done:
        with torch.inference_mode():
            # In the batches' dtype, as the env runners hand them over: packed rows and pixels stay uint8.
            seen = normalizer.observations(np.asarray(obs, dtype=buffer_dtype(env.observation_space))[None],
                                           update=False)
            out = module.forward_inference({Columns.OBS: torch.as_tensor(seen),
                                            **(memory.inputs() if memory is not None else {})})
            sampled = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS]).deterministic_sample().numpy()
        action = sampled[0]
        if isinstance(env.action_space, gym.spaces.Box):
            action = np.clip(action, env.action_space.low, env.action_space.high)
        elif isinstance(env.action_space, gym.spaces.Discrete):
            action = int(action)  # toy-text envs (FrozenLake) look actions up in tables: a 0-d array is unhashable
        obs, reward, terminated, truncated, _ = env.step(action)
        if memory is not None:  # the reward as the learner saw it (scaled where the run normalizes rewards)
            memory.step(out[Columns.STATE_OUT].numpy(), sampled,
                        normalizer.scaled_rewards(np.array([reward], dtype=np.float32)))
        frames.append(env.render())
        done = terminated or truncated
    return frames


def _play_agents(module: Any, agent_to_module: dict[str, str], env: Any, seed: int) -> list[np.ndarray]:
    """The frames of one greedy episode of a PettingZoo ParallelEnv; each agent acts with its own module, and an
    agent of a recurrent module carries its own memory."""
    obs, _ = env.reset(seed=seed)
    frames = [env.render()]
    memories = {agent: Memory(module[m], 1) for agent, m in agent_to_module.items() if module[m].is_stateful()}
    while env.agents:
        actions, steps = {}, {}
        for agent in env.agents:
            policy = module[agent_to_module[agent]]
            memory = memories.get(agent)
            with torch.inference_mode():
                seen = np.asarray(obs[agent], dtype=buffer_dtype(env.observation_space(agent)))[None]
                out = policy.forward_inference({Columns.OBS: torch.as_tensor(seen),
                                                **(memory.inputs() if memory is not None else {})})
                dist = policy.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
                sampled = dist.deterministic_sample().numpy()
            if memory is not None:
                steps[agent] = (out[Columns.STATE_OUT].numpy(), sampled)
            space = env.action_space(agent)
            action = sampled[0]
            actions[agent] = np.clip(action, space.low, space.high) if isinstance(space, gym.spaces.Box) else action
        obs, rewards, *_ = env.step(actions)
        for agent, (state_out, sampled) in steps.items():  # multi-agent runs do not scale rewards
            memories[agent].step(state_out, sampled, np.array([rewards.get(agent, 0.0)], dtype=np.float32))
        frames.append(env.render())
    return frames


def _play_turns(module: Any, agent_to_module: dict[str, str], env: TurnBasedEnv, seed: int) -> list[np.ndarray]:
    """The frames of one greedy game of a turn-based PettingZoo env, a frame per move; each player moves with its
    own module."""
    env.reset(seed=seed)
    frames = [env.render()]
    while env.agents:
        turn = env.turn()
        if turn.terminated or turn.truncated:
            env.step(None)  # the game is over: PettingZoo takes each player off the board
            continue
        env.step(greedy_move(module[agent_to_module[turn.agent]], turn.obs))
        frames.append(env.render())
    return frames


def _write_mp4(frames: list[np.ndarray], fps: int, path: Path) -> Path:
    import imageio.v2 as imageio

    # macro_block_size=2: H.264 needs even sizes; the default 16 would rescale most env frames.
    imageio.mimwrite(path, frames, fps=fps, macro_block_size=2)
    return path


def _write_gif(frames: list[np.ndarray], fps: int, path: Path) -> Path:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path
