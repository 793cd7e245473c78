"""The DDPM-style U-Net of the paper's image experiments, as a batched ensemble like the score MLP.

One member: GroupNorm (32 groups, fewer when the width is not a multiple of 32), Swish, a sinusoidal
embedding of the raw time t, residual blocks with the time embedding added, self-attention at the listed
resolutions, strided-convolution downsampling and nearest-neighbour + convolution upsampling. It outputs the
drift a_theta(y, t); the score is a / sqrt(beta(t)) (docs/diffusion-model.md#score-network; presets against
the paper's settings: docs/experiments.md#images).

The ensemble keeps every parameter stacked with a leading member axis (so Adam, checkpoints and resume treat
it exactly as the MLP ensemble) and evaluates the members with ``torch.func.vmap`` over ``functional_call``.
Inputs and outputs are flat vectors (E, n, C*H*W), as everywhere else in the core.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from ..errors import ConfigError
from ..sde import VPSDE
from .score_mlp import check_state_shapes


@dataclass(frozen=True)
class UNetSpec:
    """Architecture of one U-Net member."""

    channels: int
    image_size: int
    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    attn_resolutions: tuple[int, ...]

    def check(self) -> "UNetSpec":
        levels = len(self.ch_mult)
        if self.image_size % (2 ** (levels - 1)):
            raise ConfigError(
                f"a U-Net with {levels} levels needs an image size divisible by {2 ** (levels - 1)}; got {self.image_size}"
            )
        return self

    def as_dict(self) -> dict:
        return asdict(self)


# name -> (ch, ch_mult, num_res_blocks, attn_resolutions); the image size comes from the data.
UNET_PRESETS: dict[str, tuple[int, tuple[int, ...], int, tuple[int, ...]]] = {
    "paper-mnist": (32, (1, 2, 2), 2, (16,)),
    "paper-cifar": (128, (1, 2, 2, 2), 2, (16,)),
    "small": (16, (1, 2), 1, ()),
}


def unet_spec(preset: str, channels: int, image_size: int) -> UNetSpec:
    """The preset's architecture for images of ``channels`` x ``image_size`` x ``image_size``."""
    if preset not in UNET_PRESETS:
        raise ConfigError(f"unknown U-Net preset {preset!r}; choose one of {', '.join(UNET_PRESETS)}")
    ch, mult, blocks, attn = UNET_PRESETS[preset]
    return UNetSpec(channels, image_size, ch, mult, blocks, attn).check()


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, c), c)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """DDPM's sinusoidal embedding of the (raw) times t, shape (n,) -> (n, dim)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000.0) / max(half - 1, 1)))
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, temb: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(temb, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class AttnBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = _norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        weights = torch.softmax(torch.einsum("nci,ncj->nij", q, k) / math.sqrt(c), dim=-1)
        out = torch.einsum("nij,ncj->nci", weights, v).reshape(n, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """One member: images (n, C, H, W) and raw times (n,) -> drift (n, C, H, W)."""

    def __init__(self, spec: UNetSpec) -> None:
        super().__init__()
        self.spec = spec
        ch, temb = spec.ch, 4 * spec.ch
        self.temb = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(spec.channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        widths, c, res = [ch], ch, spec.image_size
        for level, mult in enumerate(spec.ch_mult):
            for _ in range(spec.num_res_blocks):
                block = nn.ModuleList([ResBlock(c, ch * mult, temb)])
                c = ch * mult
                if res in spec.attn_resolutions:
                    block.append(AttnBlock(c))
                self.down.append(block)
                widths.append(c)
            if level != len(spec.ch_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                widths.append(c)
                res //= 2
        self.mid = nn.ModuleList([ResBlock(c, c, temb), AttnBlock(c), ResBlock(c, c, temb)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(spec.ch_mult))):
            for _ in range(spec.num_res_blocks + 1):
                block = nn.ModuleList([ResBlock(c + widths.pop(), ch * mult, temb)])
                c = ch * mult
                if res in spec.attn_resolutions:
                    block.append(AttnBlock(c))
                self.up.append(block)
            if level != 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)]))
                res *= 2
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, spec.channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(timestep_embedding(t, self.spec.ch))
        h = self.conv_in(x)
        skips = [h]
        for block in self.down:
            if isinstance(block[0], ResBlock):
                h = block[0](h, temb)
                for extra in block[1:]:
                    h = extra(h)
            else:
                h = block[0](h)
            skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, temb)), temb)
        for block in self.up:
            if isinstance(block[0], ResBlock):
                h = block[0](torch.cat([h, skips.pop()], dim=1), temb)
                for extra in block[1:]:
                    h = extra(h)
            else:
                h = block[1](block[0](h))
        return self.conv_out(F.silu(self.norm_out(h)))


class EnsembleUNet(nn.Module):
    """E independent U-Nets with stacked parameters, evaluated together through vmap."""

    def __init__(self, n_members: int, spec: UNetSpec) -> None:
        super().__init__()
        self.n_members = n_members
        self.spec = spec
        self.data_dim = spec.channels * spec.image_size**2
        base = UNet(spec).requires_grad_(False)
        object.__setattr__(self, "_base", base)  # a template, not a submodule: its weights are never used
        self.names = [name for name, _ in base.named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.empty(n_members, *p.shape)) for _, p in base.named_parameters()
        )

    @property
    def config(self) -> dict:
        """Architecture settings, enough to rebuild the network."""
        return {"unet": self.spec.as_dict()}

    @torch.no_grad()
    def initialize(self, generators: Sequence[torch.Generator]) -> "EnsembleUNet":
        """PyTorch's default uniform(+-1/sqrt(fan_in)) for convolutions and linear maps, GroupNorm 1 and 0;
        member e drawn from generators[e]."""
        if len(generators) != self.n_members:
            raise ValueError(f"need {self.n_members} generators, got {len(generators)}")
        fan_in = {}
        for name, p in self._base.named_parameters():
            if name.endswith("weight") and p.dim() >= 2:
                fan_in[name[: -len("weight")]] = p[0].numel()
        for name, param in zip(self.names, self.stacked):
            prefix = name.rsplit(".", 1)[0] + "."
            for e, gen in enumerate(generators):
                if prefix in fan_in:
                    bound = 1.0 / math.sqrt(fan_in[prefix])
                    u = torch.rand(param.shape[1:], generator=gen, device=gen.device)
                    param[e].copy_((u * 2 - 1) * bound)
                else:  # GroupNorm
                    param[e].fill_(1.0 if name.endswith("weight") else 0.0)
        return self

    def forward(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Drift for flat y of shape (E, n, d) and raw times t of shape (E, n)."""
        E, n, _ = y.shape
        s = self.spec
        images = y.reshape(E, n, s.channels, s.image_size, s.image_size)

        def one(params, x, tt):
            return functional_call(self._base, dict(zip(self.names, params)), (x, tt))

        if E == 1:  # vmap costs about as much as the small network itself: skip it for a single member
            out = one(tuple(p[0] for p in self.stacked), images[0], t[0].to(y.dtype)).unsqueeze(0)
        else:
            out = vmap(one)(tuple(self.stacked), images, t.to(y.dtype))
        return out.reshape(E, n, -1)

    def score(self, y: torch.Tensor, t: torch.Tensor, sde: VPSDE, t_net: torch.Tensor | None = None) -> torch.Tensor:
        """s_theta(y, t) = a_theta(y, t) / sqrt(beta(t)); ``t_net`` overrides the network's time input."""
        drift = self(y, t if t_net is None else t_net)
        return drift / torch.sqrt(sde.beta(t)).unsqueeze(-1)

    def member_state_dict(self, e: int) -> dict[str, torch.Tensor]:
        """Member e's parameters under the single U-Net's names, detached and contiguous on CPU."""
        return {name: p[e].detach().cpu().clone(memory_format=torch.contiguous_format)
                for name, p in zip(self.names, self.stacked)}

    @torch.no_grad()
    def load_member_state_dict(self, e: int, state: dict[str, torch.Tensor]) -> None:
        """Set member e's parameters from a dict made by ``member_state_dict``; shapes are checked."""
        check_state_shapes({name: tuple(p.shape[1:]) for name, p in zip(self.names, self.stacked)}, state)
        for name, p in zip(self.names, self.stacked):
            p[e].copy_(state[name])
