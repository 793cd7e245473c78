"""What a run will cost, checked before it starts: its peak memory against what the machine has.

``diffusion_costs`` and ``vae_costs`` turn a config's sizes (m, n_test, batch, hidden, K, n_gen, test_kl_draws,
frames, the data set itself) into the arrays the run is sure to allocate, each named after the settings that size
it. The estimate is a lower bound on the peak: it counts only those arrays (the network's activations at their
saved size, the chunked distance blocks at their budget core.bounds.chunking.DEFAULT_BLOCK_BYTES), never the
allocator's slack. ``check_costs`` refuses a config whose estimate exceeds the machine's memory (physical memory,
or the container's cgroup limit when lower; the GPU's memory for what lives on a CUDA device), with a
ConfigError naming the largest item and the estimate. So a size that cannot fit is refused within milliseconds,
and a size that fits is never refused. Sizes whose cost is time rather than memory (N) have their own limits in
core.config_checks.

Nothing here allocates: the U-Net's activations are measured once per architecture on PyTorch's "meta" device.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import ConfigError

FLOAT = 4  # float32
DOUBLE = 8


def format_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, two significant figures at most)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.2g} {unit}" if n < 10 else f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # unreachable


def format_count(n: int) -> str:
    """1000000000 -> '1e9'; smaller counts as they are, with thousands separators."""
    if n < 10**7:
        return f"{n:,}"
    mantissa, exponent = f"{n:.3g}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _cgroup_limit() -> int | None:
    """The container's memory limit (cgroup v2, else v1), or None when unlimited or unknown."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 reports "no limit" as a huge number
            return int(text)
    return None


@functools.lru_cache(maxsize=1)
def machine_memory_bytes() -> int:
    """Physical memory, or the cgroup limit when lower; 0 when neither can be read (then nothing is refused)."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = 0
    limit = _cgroup_limit()
    known = [v for v in (physical, limit) if v]
    return min(known) if known else 0


def device_memory_bytes(device: str) -> int | None:
    """Total memory of a CUDA device, or None for the CPU (and for devices that cannot be queried)."""
    try:
        import torch

        dev = torch.device(device)
        if dev.type != "cuda" or not torch.cuda.is_available():
            return None
        return int(torch.cuda.get_device_properties(dev.index or 0).total_memory)
    except (RuntimeError, ValueError, AssertionError):
        return None


@dataclass(frozen=True)
class Cost:
    """One array (or group of arrays) a run allocates: what sizes it, its bytes, and where it lives."""

    what: str
    bytes: int
    on_device: bool = True  # False: host memory (data loading) whatever the device


def _peak(resident: Iterable[Cost], stages: Iterable[Iterable[Cost]]) -> tuple[int, Cost | None, list[Cost]]:
    """Resident arrays plus the largest stage: (peak bytes, the largest single item, the items of the peak)."""
    resident = list(resident)
    best: list[Cost] = []
    for stage in stages:
        stage = list(stage)
        if sum(c.bytes for c in stage) > sum(c.bytes for c in best):
            best = stage
    items = resident + best
    largest = max(items, key=lambda c: c.bytes, default=None)
    return sum(c.bytes for c in items), largest, items


def check_costs(resident: list[Cost], stages: list[list[Cost]], device: str = "cpu", what: str = "this run",
                needs: str = "needs") -> None:
    """Raise ConfigError when the peak (resident + the largest stage) exceeds the machine's memory, or the
    device's for what lives on a CUDA device; the message names the largest item and the estimate."""
    host = machine_memory_bytes()
    gpu = device_memory_bytes(device)
    if gpu is not None:
        on_dev = _peak([c for c in resident if c.on_device], [[c for c in s if c.on_device] for s in stages])
        on_host = _peak([c for c in resident if not c.on_device], [[c for c in s if not c.on_device] for s in stages])
        checks = [(on_dev, gpu, f"the {device} device has"), (on_host, host, "this machine has")]
    else:
        checks = [(_peak(resident, stages), host, "this machine has")]
    for (total, largest, _), limit, has in checks:
        if limit and largest is not None and total > limit:
            raise ConfigError(
                f"{what} {needs} at least {format_bytes(total)} of memory, {format_bytes(largest.bytes)} of it for "
                f"{largest.what}; {has} {format_bytes(limit)}"
            )


# --- diffusion runs ----------------------------------------------------------------------------------------

UNET_SAVED_PER_FEATURE_MAP = 8  # tensors autograd keeps per res-block feature map; measured 8.8 to 10.6 (below)


@functools.lru_cache(maxsize=32)
def unet_activation_bytes(preset: str, channels: int, size: int) -> tuple[int, int, int]:
    """(parameters, bytes kept for backward per image, largest single activation per image in bytes) of a
    U-Net preset. The parameters are counted on a U-Net built on the meta device (nothing allocated); the
    activations are counted from the architecture: every level's feature map (size/2^l)^2 x ch x mult_l, once per
    res block and once more, on the way down and up, times the tensors autograd keeps for each (norm, SiLU, conv:
    at least 8; measured with saved-tensor hooks on the meta device: 8.8 for paper-mnist, 10.3 for small, 10.6
    for paper-cifar). A lower bound, instant, without the meta device's one-second warm-up of a forward pass."""
    import torch

    from .diffusion.unet import UNET_PRESETS, UNet, unet_spec

    spec = unet_spec(preset, channels, size)
    with torch.device("meta"):
        params = sum(p.numel() for p in UNet(spec).parameters())
    ch, mult, blocks, _ = UNET_PRESETS[preset]
    maps = sum((size // 2**level) ** 2 * ch * factor for level, factor in enumerate(mult))
    per_image = FLOAT * maps * (blocks + 1) * 2 * UNET_SAVED_PER_FEATURE_MAP
    largest = FLOAT * size * size * ch * mult[0]
    return params, per_image, largest


def diffusion_costs(cfg) -> tuple[list[Cost], list[list[Cost]]]:
    """(resident arrays, stages) of one diffusion run (``cfg`` a DiffusionConfig), each stage a list of arrays
    alive together; the stages run one after another (training step, sampling, the bound's terms, the test KL)."""
    from .bounds.chunking import DEFAULT_BLOCK_BYTES, rows_per_block
    from .data.peek import peek_dataset

    shape = peek_dataset(cfg.data, cfg.data_path)
    example = shape.example if shape is not None else ((1, 8, 8) if cfg.is_images else (2,))
    d = math.prod(example)
    m, n_test, K = cfg.m, cfg.n_test, cfg.mc_samples
    if shape is not None and shape.count is not None:  # more than the file holds is refused when it is split
        m, n_test = min(m, shape.count), min(n_test, shape.count)
    n_gen, draws = cfg.n_gen, cfg.test_kl_draws
    n_samples = n_gen * draws
    batch = min(cfg.batch, m)
    steps = cfg.steps
    dim = f"of dimension {d}" if not cfg.is_images else "of {} pixels".format("x".join(str(v) for v in example))

    # The network: weights, gradients and Adam's two moments; activations per point with and without autograd.
    if cfg.is_images and len(example) == 3 and example[1] == example[2]:
        try:
            params, train_per_point, largest = unet_activation_bytes(cfg.preset, example[0], example[1])
        except ConfigError:  # an image size the preset cannot take: training will say so
            params, train_per_point, largest = 0, 0, 0
        infer_per_point = 2 * largest
        net = f"U-Net '{cfg.preset}'"
    else:
        h = cfg.hidden
        params = (d + 1) * h + 2 * h * h + h * d + 3 * h + d
        train_per_point = FLOAT * (6 * h + 8 * d + 6)
        infer_per_point = FLOAT * (2 * h + 6 * d)
        net = f"the score network (hidden = {format_count(h)})"
    resident = [
        Cost(f"{net} with its gradients and Adam state ({format_count(params)} parameters)", 4 * FLOAT * params),
        *_data_costs(cfg, shape, d, dim),
    ]

    train = [Cost(f"a training step on batch = {format_count(batch)} points through {net}", batch * train_per_point)]

    frames = []
    if cfg.frame_interval is not None:  # the reverse trajectory of the first draw of n_gen samples: frames, stacked
        n_frames = cfg.frame_count
        frames = [Cost(f"{format_count(n_frames)} trajectory frames (trajectory_frames, or N / frame_every) of "
                       f"n_gen = {format_count(n_gen)} samples {dim}",
                       2 * n_frames * n_gen * d * FLOAT)]
    sampling = [Cost(f"n_gen × test_kl_draws = {format_count(n_gen)} × {format_count(draws)} generated samples {dim}",
                     n_samples * (6 * d * FLOAT + infer_per_point)), *frames]
    kept = Cost(f"n_gen × test_kl_draws = {format_count(n_gen)} × {format_count(draws)} generated samples {dim}",
                n_samples * d * FLOAT)

    # encoder_info (core.bounds.mixture_kl): K samples per point, chunked over points but never below one point.
    centres = min(m, 4096)
    sample_rows = rows_per_block(centres, d, budget=DEFAULT_BLOCK_BYTES)
    rows = min(m, max(1, sample_rows // K)) * K
    item = DOUBLE if d <= 64 else FLOAT
    encoder = Cost(f"K = {format_count(K)} Monte Carlo samples per training point {dim} (encoder_info)",
                   rows * (d * (FLOAT + 2 * item) + 3 * DOUBLE) + DEFAULT_BLOCK_BYTES)
    dsm_points = max(m, n_test) if not cfg.is_images else min(max(m, n_test), 256)
    larger = f"m = {format_count(m)} training" if m >= n_test else f"n_test = {format_count(n_test)} test"
    dsm = Cost(f"the DSM evaluation of the {larger} points at once",
               dsm_points * (6 * d * FLOAT + infer_per_point))
    kde = Cost(f"the test KL's density estimate over n_test + n_gen = {format_count(n_test)} + {format_count(n_gen)} points",
               (n_test + n_gen) * d * 2 * DOUBLE + DEFAULT_BLOCK_BYTES)
    stages = [train, sampling, [kept, encoder], [kept, dsm], [kept, kde]]
    return resident, stages


def _data_costs(cfg, shape, d: int, dim: str) -> list[Cost]:
    """The data set as loaded (the whole file before its split, or toy points drawn in float64) and the split."""
    m, n_test = cfg.m, cfg.n_test
    if shape is not None and shape.count is not None:  # m and n_test cannot exceed what the file holds
        m, n_test = min(m, shape.count), min(n_test, shape.count)
    costs = [Cost(f"m + n_test = {format_count(m)} + {format_count(n_test)} data points {dim}", FLOAT * (m + n_test) * d)]
    if shape is not None and shape.count is not None:  # the whole file is read before it is split
        costs.append(Cost(f"the data set ({format_count(shape.count)} examples {dim})",
                          shape.count * d * (shape.itemsize + 2 * FLOAT), on_device=False))
    elif not cfg.is_images and cfg.data != "file":  # toy data are drawn in float64 with a few temporaries
        costs.append(Cost(f"drawing m + n_test = {format_count(m)} + {format_count(n_test)} points {dim}",
                          (m + n_test) * d * 4 * DOUBLE, on_device=False))
    return costs


def check_data_costs(cfg) -> None:
    """ConfigError when loading the data of ``cfg`` (e.g. a stored config, to plot its training points) cannot
    fit in this machine's memory; sizes that are not integers are left to the loaders to refuse."""
    from .data.peek import peek_dataset

    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (cfg.m, cfg.n_test)):
        return
    shape = peek_dataset(cfg.data, cfg.data_path)
    example = shape.example if shape is not None else ((1, 8, 8) if cfg.is_images else (2,))
    d = math.prod(example)
    check_costs(_data_costs(cfg, shape, d, f"of dimension {d}"), [], "cpu", "loading the run's data")


def check_diffusion_costs(cfg, concurrent: int = 1) -> None:
    """ConfigError when ``concurrent`` diffusion runs of ``cfg`` at once (1: one run; a sweep: all its (T, seed)
    runs, spread over its workers) cannot fit in this machine's memory. DiffusionConfig.validate checks one."""
    resident, stages = diffusion_costs(cfg)
    if concurrent > 1:
        resident = [Cost(c.what, c.bytes * concurrent, c.on_device) for c in resident]
        stages = [[Cost(c.what, c.bytes * concurrent, c.on_device) for c in s] for s in stages]
    if concurrent == 1:
        check_costs(resident, stages, cfg.device)
    else:
        check_costs(resident, stages, cfg.device, f"{concurrent} runs at once", "need")


# --- VAE runs ----------------------------------------------------------------------------------------------

def vae_costs(cfg) -> tuple[list[Cost], list[list[Cost]]]:
    """(resident, stages) of one VAE run (``cfg`` a VAEConfig)."""
    from .data.peek import peek_dataset
    from .vae.model import PRESETS
    from .vae.train import EVAL_CHUNK

    shape = peek_dataset(cfg.data, cfg.data_path)
    example = shape.example if shape is not None else (1, 32, 32)
    if tuple(example) == (1, 28, 28):
        example = (1, 32, 32)  # padded as in the paper
    d = math.prod(example)
    hidden, latent = PRESETS.get(cfg.preset, ((512, 256), 16))
    widths = [d, *hidden, 2 * latent]
    params = 2 * sum(a * b + b for a, b in zip(widths, widths[1:]))
    count = shape.count if shape is not None and shape.count is not None else None
    m = cfg.m if cfg.m is not None else (count or 0)
    resident = [Cost(f"the VAE with its gradients and Adam state ({format_count(params)} parameters)", 4 * FLOAT * params),
                Cost(f"m + n_test = {format_count(m)} + {format_count(cfg.n_test)} images of {d} pixels",
                     (m + cfg.n_test) * d * FLOAT)]
    if count is not None:
        resident.append(Cost(f"the data set ({format_count(count)} images)", count * d * (shape.itemsize + 2 * FLOAT),
                             on_device=False))
    batch = min(cfg.batch, m) if m else cfg.batch
    per_point = FLOAT * (4 * d + 3 * sum(hidden) * 2 + 6 * latent)
    chunk = min(EVAL_CHUNK, max(m, cfg.n_test))
    stages = [
        [Cost(f"a training step on batch = {format_count(batch)} images", batch * per_point)],
        [Cost(f"logpx_K = {format_count(cfg.logpx_K)} importance samples of {format_count(chunk)} images (log p(x))",
              cfg.logpx_K * chunk * 2 * FLOAT + 64 * chunk * (d + latent) * FLOAT)] if cfg.logpx_every else [],
    ]
    return resident, stages


def check_vae_costs(cfg) -> None:
    """ConfigError when one VAE run of ``cfg`` cannot fit in this machine's memory."""
    resident, stages = vae_costs(cfg)
    check_costs(resident, stages, cfg.device)


# --- output paths ------------------------------------------------------------------------------------------

def check_writable_folder(path: str | Path, what: str = "--out") -> None:
    """ConfigError unless ``path`` is, or can be created as, a folder this process may write into."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what} {p}: exists and is not a folder")
    probe = p
    while not probe.exists():
        if probe.is_symlink():
            raise ConfigError(f"{what} {p}: {probe} is a dangling symbolic link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} {p}: cannot be created, {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {p}: cannot write into {probe} (permission denied)")
