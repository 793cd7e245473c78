"""The DDPM-style U-Net of the paper's image experiments, as a batched ensemble like the score MLP.

One member: GroupNorm (32 groups, fewer when the width is not a multiple of 32), Swish, a sinusoidal
embedding of the raw time t, residual blocks with the time embedding added, self-attention at the listed
resolutions, strided-convolution downsampling and nearest-neighbour + convolution upsampling. It outputs the
drift a_theta(y, t); the score is a / sqrt(beta(t)) (docs/diffusion-model.md#score-network; presets against
the paper's settings: docs/experiments.md#images).

The ensemble keeps every parameter stacked with a leading member axis (so Adam, checkpoints and resume treat
it exactly as the MLP ensemble). It evaluates the members side by side along the channel axis: images
(n, E*C, H, W), each convolution one grouped convolution (groups = E) and each GroupNorm one call with E times
the groups, which is the per-member network exactly (a group never spans two members). On the CPU this runs
1.3-1.6x faster than ``torch.func.vmap`` over ``functional_call`` (``reference_forward``, kept as the formula
the tests pin it to): vmap adds reshapes, copies and a separate affine step to every layer, and the networks
are small enough (8x8 digits, 16 training images per member) that such per-op costs are a third of a step.
The output convolution (E*ch -> E*C channels) runs in channels-last layout, where oneDNN is 3-4x faster for it
(benchmarks/bench_images.py). Inputs and outputs are flat vectors (E, n, C*H*W), as everywhere else in the core.
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


class _Folded:
    """One U-Net layer for all E members at once, their channels side by side: (n, E*c, H, W).

    ``params`` maps the single U-Net's parameter names to the stacked (E, ...) tensors."""

    def __init__(self, params: dict[str, torch.Tensor], E: int, n: int) -> None:
        self.params, self.E, self.n = params, E, n

    def conv(self, h: torch.Tensor, name: str, conv: nn.Conv2d) -> torch.Tensor:
        weight, bias = self.params[name + ".weight"], self.params[name + ".bias"]
        return F.conv2d(h, weight.flatten(0, 1), bias.flatten(), conv.stride, conv.padding, groups=self.E)

    def norm(self, h: torch.Tensor, name: str, norm: nn.GroupNorm) -> torch.Tensor:
        weight, bias = self.params[name + ".weight"], self.params[name + ".bias"]
        return F.group_norm(h, self.E * norm.num_groups, weight.flatten(), bias.flatten(), norm.eps)

    def linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """x (E, n, in) -> (E, n, out) with each member's own weights."""
        weight, bias = self.params[name + ".weight"], self.params[name + ".bias"]
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    def cat(self, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Each member's channels of h, then its channels of skip (torch.cat(dim=1) of one member)."""
        n, E, size = self.n, self.E, h.shape[-2:]
        return torch.cat([h.view(n, E, -1, *size), skip.view(n, E, -1, *size)], dim=2).view(n, -1, *size)

    @staticmethod
    def upsample(h: torch.Tensor) -> torch.Tensor:
        """Nearest-neighbour upsampling by 2. Without autograd as four strided copies into the output, one per
        (row, column) offset: 5-6x faster here than F.interpolate or one broadcast copy, whose 6-D strides the
        copy kernel walks element by element. With autograd through F.interpolate, whose backward beats a sum
        over the copies."""
        if h.requires_grad:
            return F.interpolate(h, scale_factor=2, mode="nearest")
        n, c, height, width = h.shape
        out = h.new_empty(n, c, 2 * height, 2 * width)
        quads = out.view(n, c, height, 2, width, 2)
        for row in (0, 1):
            for col in (0, 1):
                quads[:, :, :, row, :, col] = h
        return out

    def time_projections(self, temb_act: torch.Tensor, blocks: list[tuple[str, ResBlock]]) -> dict[str, torch.Tensor]:
        """Every residual block's projection of SiLU(temb) in one batched product: name -> (n, E, c, 1)."""
        weights = torch.cat([self.params[name + ".temb.weight"] for name, _ in blocks], dim=1)
        biases = torch.cat([self.params[name + ".temb.bias"] for name, _ in blocks], dim=1)
        out = torch.baddbmm(biases.unsqueeze(1), temb_act, weights.transpose(1, 2)).transpose(0, 1)  # (n, E, sum c)
        widths = [block.temb.out_features for _, block in blocks]
        return {name: part.unsqueeze(-1) for (name, _), part in zip(blocks, out.split(widths, dim=2))}

    def res_block(self, x: torch.Tensor, name: str, block: ResBlock, temb_proj: dict[str, torch.Tensor]
                  ) -> torch.Tensor:
        h = self.conv(F.silu(self.norm(x, name + ".norm1", block.norm1)), name + ".conv1", block.conv1)
        n, _, height, width = h.shape
        h = (h.view(n, self.E, -1, height * width) + temb_proj[name]).view(n, -1, height, width)
        h = self.conv(F.silu(self.norm(h, name + ".norm2", block.norm2)), name + ".conv2", block.conv2)
        return h + (self.conv(x, name + ".skip", block.skip) if block.skip is not None else x)

    def attn_block(self, x: torch.Tensor, name: str, block: AttnBlock) -> torch.Tensor:
        n, E, (_, c_all, height, width) = self.n, self.E, x.shape
        c = c_all // E
        qkv = self.conv(self.norm(x, name + ".norm", block.norm), name + ".qkv", block.qkv)
        q, k, v = qkv.reshape(n, E, 3, c, height * width).unbind(2)
        weights = torch.softmax(torch.einsum("neci,necj->neij", q, k) / math.sqrt(c), dim=-1)
        out = torch.einsum("neij,necj->neci", weights, v).reshape(n, E * c, height, width)
        return x + self.conv(out, name + ".proj", block.proj)


def reference_forward(model: "EnsembleUNet", y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The drift through torch.func.vmap over the single UNet module: the definition ``forward`` must equal
    up to float rounding (the tests and benchmarks/bench_images.py use it; slower, see the module docstring)."""
    E, n, _ = y.shape
    s = model.spec
    images = y.reshape(E, n, s.channels, s.image_size, s.image_size)

    def one(params, x, tt):
        return functional_call(model._base, dict(zip(model.names, params)), (x, tt))

    return vmap(one)(tuple(model.stacked), images, t.to(y.dtype)).reshape(E, n, -1)


class EnsembleUNet(nn.Module):
    """E independent U-Nets with stacked parameters, evaluated together side by side along the channel axis."""

    def __init__(self, n_members: int, spec: UNetSpec) -> None:
        super().__init__()
        self.n_members = n_members
        self.spec = spec
        self.data_dim = spec.channels * spec.image_size**2
        base = UNet(spec).requires_grad_(False)
        object.__setattr__(self, "_base", base)  # a template, not a submodule: its weights are never used
        self.names = [name for name, _ in base.named_parameters()]
        self._res_blocks = [(name, m) for name, m in base.named_modules() if isinstance(m, ResBlock)]
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
        return self.forward_with(list(self.stacked), y, t)

    def leading_members(self, a: int) -> "LeadingMembers":
        """The first ``a`` members as a network of their own, on views of the parameters (no copy): the sampler
        runs the members still stepping when their step counts differ (core/diffusion/sampler.py)."""
        return LeadingMembers(self, a)

    def forward_with(self, stacked: Sequence[torch.Tensor], y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The drift with ``stacked`` (this model's parameters, or their leading members) as the weights."""
        E, n, _ = y.shape
        s = self.spec
        ops = _Folded(dict(zip(self.names, stacked)), E, n)
        emb = timestep_embedding(t.to(y.dtype).reshape(-1), s.ch).view(E, n, -1)
        temb_act = F.silu(ops.linear(F.silu(ops.linear(emb, "temb.0")), "temb.2"))
        temb = ops.time_projections(temb_act, self._res_blocks)
        side = s.image_size
        x = y.view(E, n, -1).transpose(0, 1).reshape(n, E * s.channels, side, side).contiguous()
        h = ops.conv(x, "conv_in", self._base.conv_in)
        skips = [h]
        for i, block in enumerate(self._base.down):
            if isinstance(block[0], ResBlock):
                h = ops.res_block(h, f"down.{i}.0", block[0], temb)
                for j, extra in enumerate(block[1:], 1):
                    h = ops.attn_block(h, f"down.{i}.{j}", extra)
            else:
                h = ops.conv(h, f"down.{i}.0", block[0])
            skips.append(h)
        h = ops.res_block(h, "mid.0", self._base.mid[0], temb)
        h = ops.attn_block(h, "mid.1", self._base.mid[1])
        h = ops.res_block(h, "mid.2", self._base.mid[2], temb)
        for i, block in enumerate(self._base.up):
            if isinstance(block[0], ResBlock):
                h = ops.res_block(ops.cat(h, skips.pop()), f"up.{i}.0", block[0], temb)
                for j, extra in enumerate(block[1:], 1):
                    h = ops.attn_block(h, f"up.{i}.{j}", extra)
            else:
                h = ops.conv(ops.upsample(h), f"up.{i}.1", block[1])
        h = F.silu(ops.norm(h, "norm_out", self._base.norm_out)).contiguous(memory_format=torch.channels_last)
        out = ops.conv(h, "conv_out", self._base.conv_out)  # (n, E*C, H, W), channels-last
        return out.unflatten(1, (E, s.channels)).transpose(0, 1).reshape(E, n, -1).contiguous()

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


class LeadingMembers:
    """Members 0..a-1 of an EnsembleUNet, evaluated on leading slices of its stacked parameters."""

    def __init__(self, model: EnsembleUNet, a: int) -> None:
        if not 1 <= a <= model.n_members:
            raise ValueError(f"a leading view needs 1..{model.n_members} members, got {a}")
        self.model, self.n_members = model, a

    def __call__(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model.forward_with([p[: self.n_members] for p in self.model.stacked], y, t)

    def score(self, y: torch.Tensor, t: torch.Tensor, sde: VPSDE, t_net: torch.Tensor | None = None) -> torch.Tensor:
        """EnsembleUNet.score for these members."""
        drift = self(y, t if t_net is None else t_net)
        return drift / torch.sqrt(sde.beta(t)).unsqueeze(-1)
