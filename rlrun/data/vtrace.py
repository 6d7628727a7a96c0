"""V-trace (Espeholt et al., 2018, section 4.1) on time-major `[T, B]` fragments.

The env runner's layout makes every value V(x_{t+1}) a value of the batch:
the row after step t observes x_{t+1} -- for a truncated episode its true
final observation, since gymnasium's NEXT_STEP autoreset plays one extra row
from it -- and the fragment's last step bootstraps from `bootstrap_value`.
So, with rho_t = min(rho_bar, pi/mu) and c_t = lambda * min(c_bar, pi/mu):

    delta_t = rho_t * (r_t + gamma * (1 - terminated_t) * V(x_{t+1}) - V(x_t))
    v_t     = V(x_t) + delta_t + gamma * c_t * (1 - done_t) * (v_{t+1} - V(x_{t+1}))
    A_t     = min(rho_bar_pg, pi/mu) * (r_t + gamma * (1 - terminated_t) * v'_{t+1} - V(x_t))

where v'_{t+1} is v_{t+1} inside an episode and V(x_{t+1}) where the episode
or the fragment ends there (the correction stops at every boundary). Rows of
the autoreset step (`LOSS_MASK` 0) get numbers too; the losses mask them.

lambda is the paper's remark on Retrace(lambda) (section 4.1): lambda < 1 cuts the
traces sooner, trading the n-step targets' variance for bias as GAE's lambda does
(on-policy, the targets are GAE(lambda)'s). lambda = 1 is V-trace as the paper runs it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class VTraceReturns(NamedTuple):
    vs: torch.Tensor  # value targets v_t, [T, B]
    pg_advantages: torch.Tensor  # A_t, [T, B]
    rhos: torch.Tensor  # unclipped importance weights pi/mu, [T, B] (for diagnostics)


@torch.no_grad()
def vtrace(
    *,
    behaviour_logp: torch.Tensor,
    target_logp: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    terminateds: torch.Tensor,
    truncateds: torch.Tensor,
    gamma: float,
    clip_rho_threshold: float = 1.0,
    clip_pg_rho_threshold: float = 1.0,
    clip_c_threshold: float = 1.0,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """V-trace targets and policy-gradient advantages; all inputs `[T, B]` except `bootstrap_value` `[B]`."""
    rhos = torch.exp(target_logp - behaviour_logp)
    clipped_rhos = rhos.clamp(max=clip_rho_threshold)
    cs = lambda_ * rhos.clamp(max=clip_c_threshold)
    not_terminated = 1.0 - terminateds.float()
    not_done = 1.0 - (terminateds | truncateds).float()
    next_values = torch.cat([values[1:], bootstrap_value.unsqueeze(0)])
    deltas = clipped_rhos * (rewards + gamma * not_terminated * next_values - values)

    vs_minus_v = torch.zeros_like(values)
    acc = torch.zeros_like(bootstrap_value)
    for t in range(len(values) - 1, -1, -1):
        acc = deltas[t] + gamma * cs[t] * not_done[t] * acc
        vs_minus_v[t] = acc
    vs = values + vs_minus_v

    # v'_{t+1}: the next target inside an episode; the plain next value where an episode or the fragment ends.
    next_vs = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)])
    next_vs = not_done * next_vs + (1.0 - not_done) * next_values
    pg_rhos = rhos.clamp(max=clip_pg_rho_threshold)
    pg_advantages = pg_rhos * (rewards + gamma * not_terminated * next_vs - values)
    return VTraceReturns(vs=vs, pg_advantages=pg_advantages, rhos=rhos)
