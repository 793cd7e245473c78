"""The paper's score MLP, as a batched ensemble of independent members.

Each member is the network of the paper's Swiss roll experiments: [x, t] -> 128 -> 128 -> 128 -> d with Swish
activations. It outputs the drift a_theta(y, t); the score is a / sqrt(beta(t))
(docs/diffusion-model.md#score-network). A sweep trains many members at once with
batched matrix products: one member is bit-identical whether it trains alone or beside others, because
every member has its own parameters, its own initialization stream and its own noise.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..sde import VPSDE
from .ensemble_mlp_kernels import Workspace, mlp_inference, mlp_train

def check_state_shapes(expected: dict[str, tuple[int, ...]], state: dict[str, torch.Tensor]) -> None:
    """Raise ValueError naming missing, unexpected and wrongly shaped weights when ``state`` does not fit."""
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise ValueError(
            f"weights do not fit this network: missing {missing[:5]}, unexpected {extra[:5]}, wrong shape {wrong[:5]}"
        )


class EnsembleMLP(nn.Module):
    """E independent MLPs evaluated together; inputs and outputs carry a leading member axis."""

    def __init__(self, n_members: int, data_dim: int, hidden: int = 128, n_hidden_layers: int = 3) -> None:
        super().__init__()
        self.n_members = n_members
        self.data_dim = data_dim
        self.hidden = hidden
        self.n_hidden_layers = n_hidden_layers
        widths = [data_dim + 1] + [hidden] * n_hidden_layers + [data_dim]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(n_members, fan_in, fan_out)) for fan_in, fan_out in zip(widths, widths[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(n_members, 1, fan_out)) for fan_out in widths[1:])

    @property
    def config(self) -> dict:
        """Architecture settings, enough to rebuild the network."""
        return {"data_dim": self.data_dim, "hidden": self.hidden, "n_hidden_layers": self.n_hidden_layers}

    def initialize(self, generators: Sequence[torch.Generator]) -> "EnsembleMLP":
        """nn.Linear's default init (uniform in +-1/sqrt(fan_in)), member e drawn from generators[e]."""
        with torch.no_grad():  # inside the body: mutmut skips decorated functions
            if len(generators) != self.n_members:
                raise ValueError(f"need {self.n_members} generators, got {len(generators)}")
            for weight, bias in zip(self.weights, self.biases):
                bound = 1.0 / math.sqrt(weight.shape[1])
                for e, gen in enumerate(generators):
                    # Draw on the generator's device, then copy: the weights may live elsewhere.
                    w = torch.rand(weight.shape[1:], generator=gen, device=gen.device)
                    b = torch.rand(bias.shape[1:], generator=gen, device=gen.device)
                    weight[e].copy_((w * 2 - 1) * bound)
                    bias[e].copy_((b * 2 - 1) * bound)
            return self

    accepts_workspace = True  # forward and score take a Workspace (the sampler checks this flag)

    def forward(self, y: torch.Tensor, t: torch.Tensor, workspace: Workspace | None = None) -> torch.Tensor:
        """Drift a_theta(y, t) for y of shape (E, n, d) and raw times t of shape (E, n).

        With a ``workspace`` (inference only) every activation is written into its reused buffers and the
        result is one of them, valid until the next call with the same workspace.
        """
        if workspace is None:
            h = torch.cat([y, t.unsqueeze(-1).to(y.dtype)], dim=-1)
            return mlp_train(h, list(self.weights), list(self.biases))
        h = workspace.get("input", (*y.shape[:-1], y.shape[-1] + 1), y)
        h[..., :-1].copy_(y)
        h[..., -1].copy_(t)
        return mlp_inference(h, list(self.weights), list(self.biases), workspace)

    def score(
        self,
        y: torch.Tensor,
        t: torch.Tensor,
        sde: VPSDE,
        t_net: torch.Tensor | None = None,
        workspace: Workspace | None = None,
    ) -> torch.Tensor:
        """s_theta(y, t) = a_theta(y, t) / sqrt(beta(t)); ``t_net`` overrides the network's time input
        (docs/diffusion-model.md#score-network). The result is a new tensor, also with a workspace."""
        drift = self(y, t if t_net is None else t_net, workspace)
        return drift / torch.sqrt(sde.beta(t)).unsqueeze(-1)

    def member_state_dict(self, e: int) -> dict[str, torch.Tensor]:
        """Member e's parameters, in nn.Linear's layout (weight: out x in), detached and contiguous on CPU."""
        state = {}
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            state[f"layers.{i}.weight"] = weight[e].detach().t().cpu().clone(memory_format=torch.contiguous_format)
            state[f"layers.{i}.bias"] = bias[e, 0].detach().cpu().clone()
        return state

    def load_member_state_dict(self, e: int, state: dict[str, torch.Tensor]) -> None:
        """Set member e's parameters from a dict made by ``member_state_dict``; shapes are checked."""
        with torch.no_grad():  # inside the body: mutmut skips decorated functions
            check_state_shapes({k: tuple(v.shape) for k, v in self.member_state_dict(0).items()}, state)
            for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
                weight[e].copy_(state[f"layers.{i}.weight"].t())
                bias[e, 0].copy_(state[f"layers.{i}.bias"])
