"""The generator G_T: Euler-Maruyama on the reverse SDE, recording score norms in the same pass.

Y_{k+1} = Y_k + delta [1/2 beta(t_k) Y_k + beta(t_k) s_theta(Y_k, t_k)] + sqrt(delta beta(t_k)) xi_k,
with delta = T/N, reverse clock s_k = k T/N and forward time t_k = T - s_k; no final denoising step
(docs/diffusion-model.md#generator).
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
    """Final samples (E, n, d); mean score norm per step (E, N); optional frames (E, F, n, d) with their times."""

    samples: torch.Tensor
    mean_score_norm: torch.Tensor
    frames: torch.Tensor | None = None
    frame_times: torch.Tensor | None = None

    @property
    def L(self) -> torch.Tensor:
        """Max over steps of the mean score norm, per member: the bound's L (docs/diffusion-bound.md#generator)."""
        return self.mean_score_norm.max(dim=1).values


def euler_maruyama(
    model: EnsembleMLP,
    sde: VPSDE,
    y0: torch.Tensor,
    T: torch.Tensor,
    n_steps: int,
    generators: Sequence[torch.Generator],
    *,
    probe_reverse_clock: bool = False,
    frame_every: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SamplerResult:
    """Run the reverse SDE from y0 (E, n, d) over horizons T (E,) in ``n_steps`` steps.

    The recorded norm is that of the score used for the step. With ``probe_reverse_clock`` (the reference
    Swiss roll code) it is instead the norm of a_theta(Y_k, s_k) / sqrt(beta(s_k)), the network queried at the
    reverse clock; the trajectory itself is unchanged (docs/diffusion-bound.md#reference-2d).
    """
    with torch.no_grad():  # inside the body: mutmut skips decorated functions
        n_steps = check_steps(n_steps)
        n_members, n, _ = y0.shape
        y = y0.clone()
        delta = (T / n_steps).view(n_members, 1, 1)
        norms = torch.empty(n_members, n_steps, dtype=torch.float32, device=y.device)
        frames = [y0.clone()] if frame_every else []
        frame_times = [T.clone()] if frame_every else []
        workspace = Workspace() if getattr(model, "accepts_workspace", False) else None
        chunk = inference_chunk(n_members, y) if workspace is not None else n
        score = torch.empty_like(y)
        for k in range(n_steps):
            if should_stop is not None and should_stop():
                raise InterruptedError("sampling cancelled")
            s_k = T * (k / n_steps)
            t_k = T - s_k
            norm_sum = torch.zeros(n_members, dtype=norms.dtype, device=y.device)
            for start in range(0, n, chunk):
                rows = slice(start, start + chunk)
                y_rows = y[:, rows]
                t_grid = t_k.unsqueeze(1).expand(-1, y_rows.shape[1])
                score[:, rows] = _score(model, y_rows, t_grid, sde, workspace)
                if probe_reverse_clock:
                    s_grid = s_k.unsqueeze(1).expand(-1, y_rows.shape[1])
                    norm_sum += _score(model, y_rows, s_grid, sde, workspace).norm(dim=-1).sum(dim=1)
                else:
                    norm_sum += score[:, rows].norm(dim=-1).sum(dim=1)
            norms[:, k] = norm_sum / n
            beta = sde.beta(t_k).view(n_members, 1, 1)
            noise = normal(generators, (n, y.shape[-1]), y.device)
            y = y + delta * (0.5 * beta * y + beta * score) + torch.sqrt(delta * beta) * noise
            if frame_every and ((k + 1) % frame_every == 0 or k + 1 == n_steps):
                frames.append(y.clone())
                frame_times.append(T - T * ((k + 1) / n_steps))
        if frame_every:
            return SamplerResult(y, norms, torch.stack(frames, dim=1), torch.stack(frame_times, dim=1))
        return SamplerResult(y, norms)


def _score(model, y: torch.Tensor, t: torch.Tensor, sde: VPSDE, workspace: Workspace | None) -> torch.Tensor:
    """The model's score, through the workspace when the model takes one (our MLP) and plainly otherwise."""
    if workspace is None:
        return model.score(y, t, sde)
    return model.score(y, t, sde, workspace=workspace)
