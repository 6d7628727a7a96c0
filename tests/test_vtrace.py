"""V-trace against a plain per-step reference of the paper's sum, and against GAE on-policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlrun.data.advantages import compute_gae
from rlrun.data.vtrace import vtrace

GAMMA = 0.9


def random_fragment(seed: int, T: int = 12, B: int = 5) -> dict[str, torch.Tensor]:
    """Random logps, rewards and values, with terminations and truncations scattered inside the fragment."""
    g = torch.Generator().manual_seed(seed)
    ends = torch.rand(T, B, generator=g)
    return {
        "behaviour_logp": -torch.rand(T, B, generator=g) * 2,
        "target_logp": -torch.rand(T, B, generator=g) * 2,
        "rewards": torch.randn(T, B, generator=g),
        "values": torch.randn(T, B, generator=g),
        "bootstrap_value": torch.randn(B, generator=g),
        "terminateds": ends < 0.1,
        "truncateds": (ends >= 0.1) & (ends < 0.2),
    }


def reference(f: dict[str, torch.Tensor], rho_bar: float, pg_rho_bar: float, c_bar: float,
              lam: float = 1.0) -> tuple[np.ndarray, ...]:
    """Eq. (1) of the paper one (s, b) at a time: v_s = V(x_s) + sum_t gamma^(t-s) (prod_{i<t} c_i) delta_t,
    with c_i = lam * min(c_bar, pi/mu) (the paper's Retrace-style lambda)."""
    d = {k: (v if v.dtype == torch.bool else v.double()).numpy() for k, v in f.items()}
    T, B = d["values"].shape
    ratio = np.exp(d["target_logp"] - d["behaviour_logp"])
    done = d["terminateds"] | d["truncateds"]

    def next_value(t: int, b: int) -> float:  # V(x_{t+1}): the next row's value, or the bootstrap
        return d["values"][t + 1, b] if t + 1 < T else d["bootstrap_value"][b]

    def delta(t: int, b: int) -> float:
        target = d["rewards"][t, b] + (0.0 if d["terminateds"][t, b] else GAMMA * next_value(t, b))
        return min(rho_bar, ratio[t, b]) * (target - d["values"][t, b])

    vs = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            total, trace = 0.0, 1.0
            for t in range(s, T):
                total += GAMMA ** (t - s) * trace * delta(t, b)
                if done[t, b]:
                    break
                trace *= lam * min(c_bar, ratio[t, b])
            vs[s, b] = d["values"][s, b] + total
    adv = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            inside = s + 1 < T and not done[s, b]
            v_next = vs[s + 1, b] if inside else next_value(s, b)
            target = d["rewards"][s, b] + (0.0 if d["terminateds"][s, b] else GAMMA * v_next)
            adv[s, b] = min(pg_rho_bar, ratio[s, b]) * (target - d["values"][s, b])
    return vs, adv


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("rho_bar", "pg_rho_bar", "c_bar", "lam"),
                         [(1.0, 1.0, 1.0, 1.0), (0.5, 2.0, 0.8, 1.0), (10.0, 10.0, 10.0, 1.0), (1.0, 1.0, 1.0, 0.7)])
def test_vtrace_matches_the_per_step_reference_across_episode_and_fragment_ends(
    seed: int, rho_bar: float, pg_rho_bar: float, c_bar: float, lam: float
) -> None:
    f = random_fragment(seed)
    assert f["terminateds"].any() and f["truncateds"].any()
    out = vtrace(**f, gamma=GAMMA, clip_rho_threshold=rho_bar, clip_pg_rho_threshold=pg_rho_bar,
                 clip_c_threshold=c_bar, lambda_=lam)
    vs, adv = reference(f, rho_bar, pg_rho_bar, c_bar, lam)
    np.testing.assert_allclose(out.vs.numpy(), vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.pg_advantages.numpy(), adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.rhos.numpy(), np.exp((f["target_logp"] - f["behaviour_logp"]).numpy()), rtol=1e-6)


@pytest.mark.parametrize("lam", [1.0, 0.8, 0.0])
def test_on_policy_vtrace_targets_are_gae_targets(lam: float) -> None:
    """With pi = mu and thresholds >= 1, v_s is GAE(lambda)'s value target (lambda = 1: the discounted return to the
    episode or fragment end)."""
    f = random_fragment(7)
    f["target_logp"] = f["behaviour_logp"].clone()
    out = vtrace(**f, gamma=GAMMA, lambda_=lam)
    values = f["values"].numpy()
    next_values = np.concatenate([values[1:], f["bootstrap_value"].numpy()[None]])
    _, targets = compute_gae(f["rewards"].numpy(), values, next_values, f["terminateds"].numpy(),
                             f["truncateds"].numpy(), GAMMA, lam)
    np.testing.assert_allclose(out.vs.numpy(), targets, rtol=1e-5, atol=1e-5)
