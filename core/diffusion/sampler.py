"""The generator G_T: Euler-Maruyama on the reverse SDE, recording score norms in the same pass.

Y_{k+1} = Y_k + delta [1/2 beta(t_k) Y_k + beta(t_k) s_theta(Y_k, t_k)] + sqrt(delta beta(t_k)) xi_k,
with delta = T/N, reverse clock s_k = k T/N and forward time t_k = T - s_k; no final denoising step
(docs/diffusion-model.md#generator).

Members of an ensemble may take different step counts N_e (images: a fixed step size, so N = T / step size).
They all start at k = 0; member e stops after its N_e steps, and from then on the network runs on the members
still going only (on the leading ones without a copy when the model offers ``leading_members`` and the members
are ordered by decreasing N, as core/sweep.py orders them). Each member draws its noise from its own stream at
its own steps only, so its trajectory is the one it would have alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..sde import VPSDE, check_steps
from .noise import normal
from .ensemble_mlp_kernels import Workspace, inference_chunk
from .score_mlp import EnsembleMLP


@dataclass
class SamplerResult:
    """Final samples (E, n, d); mean score norm per step (E, max N), NaN past a member's own N; optionally each
    member's frames (F_e, n, d) and their forward times (F_e,)."""

    samples: torch.Tensor
    mean_score_norm: torch.Tensor
    frames: list[torch.Tensor] | None = None
    frame_times: list[torch.Tensor] | None = None

    @property
    def L(self) -> torch.Tensor:
        """Max over a member's steps of the mean score norm: the bound's L (docs/diffusion-bound.md#generator)."""
        norms = self.mean_score_norm
        return torch.where(torch.isnan(norms), torch.full_like(norms, -torch.inf), norms).max(dim=1).values


def member_steps(n_steps: int | Sequence[int], n_members: int) -> list[int]:
    """Each member's step count: one int for all, or one per member (each checked)."""
    if isinstance(n_steps, (int, float)) or (isinstance(n_steps, torch.Tensor) and n_steps.dim() == 0):
        return [check_steps(n_steps)] * n_members
    steps = [check_steps(n) for n in n_steps]
    if len(steps) != n_members:
        raise ValueError(f"need one step count per member ({n_members}), got {len(steps)}")
    return steps


def euler_maruyama(
    model: EnsembleMLP,
    sde: VPSDE,
    y0: torch.Tensor,
    T: torch.Tensor,
    n_steps: int | Sequence[int],
    generators: Sequence[torch.Generator],
    *,
    probe_reverse_clock: bool = False,
    frame_every: int | Sequence[int] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SamplerResult:
    """Run the reverse SDE from y0 (E, n, d) over horizons T (E,) in ``n_steps`` steps (one count, or one per
    member); ``frame_every``: a frame every that many of a member's steps (one value or one per member), plus
    the start and its last step.

    The recorded norm is that of the score used for the step. With ``probe_reverse_clock`` (the reference
    Swiss roll code) it is instead the norm of a_theta(Y_k, s_k) / sqrt(beta(s_k)), the network queried at the
    reverse clock; the trajectory itself is unchanged (docs/diffusion-bound.md#reference-2d).
    """
    with torch.no_grad():  # inside the body: mutmut skips decorated functions
        n_members, n, _ = y0.shape
        steps = member_steps(n_steps, n_members)
        longest = max(steps)
        every = _frame_intervals(frame_every, n_members)
        steps_t = torch.tensor(steps, dtype=T.dtype, device=T.device)
        y = y0.clone()
        delta = (T / steps_t).view(n_members, 1, 1)
        norms = torch.full((n_members, longest), torch.nan, dtype=torch.float32, device=y.device)
        frames = [[y0[e].clone()] for e in range(n_members)] if every else None
        frame_times = [[T[e].clone()] for e in range(n_members)] if every else None
        workspace = Workspace() if getattr(model, "accepts_workspace", False) else None
        chunk = even_chunk(n, inference_chunk(n_members, y)) if workspace is not None else n
        score = torch.empty_like(y)
        for k in range(longest):
            if should_stop is not None and should_stop():
                raise InterruptedError("sampling cancelled")
            active = [e for e in range(n_members) if k < steps[e]]
            a = len(active)
            leading = active == list(range(a))
            net, whole = _network_for(model, a, leading, n_members)
            pick = _select(active, leading, n_members)
            s_k = T * (k / steps_t)
            t_k = T - s_k
            t_net, s_net = (t_k, s_k) if whole else (t_k[:a], s_k[:a])
            norm_sum = torch.zeros(n_members, dtype=norms.dtype, device=y.device)
            for start in range(0, n, chunk):
                rows = slice(start, start + chunk)
                y_rows = y[:, rows] if whole else y[:a, rows]
                count = y_rows.shape[1]
                out = _score(net, y_rows, t_net.unsqueeze(1).expand(-1, count), sde, workspace)
                score[:a, rows] = pick(out) if whole else out
                if probe_reverse_clock:
                    probed = _score(net, y_rows, s_net.unsqueeze(1).expand(-1, count), sde, workspace)
                    norm_sum[:a] += (pick(probed) if whole else probed).norm(dim=-1).sum(dim=1)
                else:
                    norm_sum[:a] += score[:a, rows].norm(dim=-1).sum(dim=1)
            _update(y, score, norms, norm_sum, k, active, leading, n, t_k, delta, sde,
                    [generators[e] for e in active])
            if every:
                for e in active:
                    if (k + 1) % every[e] == 0 or k + 1 == steps[e]:
                        frames[e].append(y[e].clone())
                        frame_times[e].append(T[e] - T[e] * ((k + 1) / steps[e]))
        if every:
            return SamplerResult(y, norms, [torch.stack(f) for f in frames], [torch.stack(t) for t in frame_times])
        return SamplerResult(y, norms)


def even_chunk(n: int, limit: int) -> int:
    """Points per network call when n points go through in calls of at most ``limit``: as few calls as the limit
    allows, of one size but the last (smaller by less than the number of calls), so that no call is a small
    remainder (each call has a fixed cost). At least 1, also for n = 0 (no call then)."""
    calls = max(1, -(-n // max(1, limit)))
    return max(1, -(-n // calls))


def _frame_intervals(frame_every: int | Sequence[int] | None, n_members: int) -> list[int] | None:
    """Each member's steps between frames, or None for no frames."""
    if not frame_every:
        return None
    if isinstance(frame_every, int):
        return [frame_every] * n_members
    every = [int(f) for f in frame_every]
    if len(every) != n_members or min(every) < 1:
        raise ValueError(f"frame_every needs one value >= 1 per member ({n_members}), got {frame_every!r}")
    return every


def _network_for(model, a: int, leading: bool, n_members: int):
    """The network to call for the a active members, and whether it runs every member: the model itself when
    all are active; its leading members' view when they lead and the model has one; else the whole model (the
    inactive members' scores are computed and dropped)."""
    if a < n_members and leading and hasattr(model, "leading_members"):
        return model.leading_members(a), False
    return model, True


def _select(active: list[int], leading: bool, n_members: int):
    """Pick the active members' entries (leading axis) of a per-member tensor."""
    if len(active) == n_members:
        return lambda x: x
    if leading:
        return lambda x: x[: len(active)]
    index = torch.tensor(active)
    return lambda x: x[index.to(x.device)]


def _update(y, score, norms, norm_sum, k, active, leading, n, t_k, delta, sde, active_generators) -> None:
    """One Euler-Maruyama step for the active members, in place; their mean score norm goes to norms[:, k].
    ``score[:a]`` holds the active members' scores in order."""
    a = len(active)
    noise = normal(active_generators, (n, y.shape[-1]), y.device)
    if leading:
        members = slice(0, a)
    else:
        members = torch.tensor(active, device=y.device)
    beta = sde.beta(t_k[members]).view(a, 1, 1)
    d = delta[members]
    norms[members, k] = norm_sum[:a] / n
    y[members] = y[members] + d * (0.5 * beta * y[members] + beta * score[:a]) + torch.sqrt(d * beta) * noise


def _score(model, y: torch.Tensor, t: torch.Tensor, sde: VPSDE, workspace: Workspace | None) -> torch.Tensor:
    """The model's score, through the workspace when the model takes one (our MLP) and plainly otherwise."""
    if workspace is None:
        return model.score(y, t, sde)
    return model.score(y, t, sde, workspace=workspace)
