"""The read side of checkpoints: what a checkpoint's document and tensors must be, checked before use.

core.checkpoint reads the file (core.io.safe_read), checks its SHA-256, parses its JSON document and then calls
this module, which refuses, with a CheckpointError naming the field:

- a document whose fields have the wrong type: ``format_version`` (an integer, not a bool), ``model``
  (``dm`` or ``vae``), ``config`` (an object that DiffusionConfig or VAEConfig accepts, every field of its
  type, the dataset, network and schedule settings valid; not the admission checks of ``validate()``, which
  depend on this machine and are made when a run starts or resumes),
  ``step`` (an integer), ``history`` (records valid under core.records.validate_history), ``bound`` and
  ``provenance`` (objects), ``kernel_paths`` (pass name -> "torch" or "onednn");
- tensors that do not fit the config: weights that are not floating point or do not have the shapes of the
  config's network, Adam moments whose shapes differ from the parameters', a random state that is neither a
  CPU nor a CUDA generator's, samples that are not float32 arrays of the data's dimension, a reverse trajectory
  (``trajectory.frames`` and ``trajectory.times``) that is not a float32 (F, n, d) stack of frames of the data's
  dimension with F finite times.

It also converts a training random state saved on one kind of device for another (``train_state_for``):
CUDA's Philox state (16 bytes: seed and offset) and the CPU's Mersenne Twister state (5056 bytes) cannot be
converted into each other, so the stream is re-seeded from the run's seed and step, with a note saying so.
"""

from __future__ import annotations

import functools
import math
import re
import struct
from typing import Any

import numpy as np

from .errors import CheckpointError
from .records import RecordError, validate_history

MODELS = ("dm", "vae")
REQUIRED_CONFIG = {"dm": ("data", "m", "T", "iters", "seed"), "vae": ("data", "epochs", "seed")}
RNG_CPU_BYTES = 5056   # torch.Generator("cpu").get_state(): the Mersenne Twister state
RNG_CUDA_BYTES = 16    # torch.Generator("cuda").get_state(): Philox seed (uint64) and offset (int64)
DEVICE_TYPES = ("cpu", "cuda")
# safetensors dtype names -> numpy dtypes (little-endian, as the format stores them)
ST_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "i1", "U8": "u1", "I16": "<i2", "U16": "<u2",
             "I32": "<i4", "U32": "<u4", "I64": "<i8", "U64": "<u8", "BOOL": "?"}
FLOAT_DTYPES = ("F16", "F32", "F64")
MAX_IMAGE_SIDE = 4096
_SAMPLES = re.compile(r"samples\.step_(\d{1,12})")
TRAJECTORY_KEYS = ("trajectory.frames", "trajectory.times")
_OPTIM = re.compile(r"optim\.(exp_avg|exp_avg_sq|step)\.(\d{1,6})")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the document ----------------------------------------------------------------------------------------
def validate_document(doc: Any, name: str, fmt: str, version_max: int, package: str):
    """Check the checkpoint document's fields; returns the validated config (DiffusionConfig or VAEConfig)."""
    if not isinstance(doc, dict):
        raise CheckpointError(f"{name}: not an InfoGen checkpoint (its document is not a JSON object)")
    if doc.get("format") != fmt:
        raise CheckpointError(f"{name}: not an InfoGen checkpoint (format {_short(doc.get('format'))})")
    version = doc.get("format_version")
    if not _integer(version) or version < 1:
        raise CheckpointError(f"{name}: field 'format_version' must be an integer >= 1, got {_short(version)}")
    if version > version_max:
        raise CheckpointError(
            f"{name}: written by a newer InfoGen Explorer (checkpoint format {version}; this build reads up to "
            f"{version_max}, package {package}): upgrade to open it")
    for key in ("model", "config", "step", "history"):
        if key not in doc:
            raise CheckpointError(f"{name}: the document has no {key!r}")
    model = doc["model"]
    if model not in MODELS:
        raise CheckpointError(f"{name}: field 'model' must be one of {', '.join(MODELS)}, got {_short(model)}")
    if "package_version" in doc and not isinstance(doc["package_version"], str):
        raise CheckpointError(f"{name}: field 'package_version' must be a string, got {_short(doc['package_version'])}")
    cfg = validated_config(model, doc["config"], name)
    step = doc["step"]
    if not _integer(step) or step < 0:
        raise CheckpointError(f"{name}: field 'step' must be an integer >= 0, got {_short(step)}")
    _check_history(doc["history"], "history", name)
    bound = doc.get("bound")
    if bound is not None:
        if not isinstance(bound, dict):
            raise CheckpointError(f"{name}: field 'bound' must be an object, got {_short(bound)}")
        for key, value in bound.items():
            if not (value is None or isinstance(value, str)
                    or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))):
                raise CheckpointError(f"{name}: field 'bound.{key}' must be a string, a number or null, got {_short(value)}")
    if doc.get("provenance") is not None and not isinstance(doc["provenance"], dict):
        raise CheckpointError(f"{name}: field 'provenance' must be an object, got {_short(doc['provenance'])}")
    paths = doc.get("kernel_paths")
    if paths is not None:
        from .kernel_choice import PATHS

        if not isinstance(paths, dict) or not all(isinstance(k, str) and v in PATHS for k, v in paths.items()):
            raise CheckpointError(f"{name}: field 'kernel_paths' must map pass names to one of {', '.join(PATHS)}, "
                                  f"got {_short(paths)}")
    return cfg


def _check_history(history: Any, where: str, name: str) -> None:
    """core.records.validate_history, its RecordError as a CheckpointError naming the file."""
    try:
        validate_history(history, where)
    except RecordError as exc:
        raise CheckpointError(f"{name}: {exc}") from None


# What every file's config must satisfy to be read: the types of the dataclass fields and the settings that define
# the data, the network and the schedule. The admission checks of validate() (this machine's memory, lr <= 1,
# T <= 5...) belong to starting or resuming a run: a file trained elsewhere or by an earlier build must still open.
_AT_LEAST = {
    "dm": {"m": 2, "n_test": 2, "iters": 1, "batch": 1, "eval_every": 0, "mc_samples": 1, "n_gen": 2, "test_kl_draws": 1,
           "dsm_eval_draws": 1, "hidden": 1, "frame_every": 0, "trajectory_frames": 0, "seed": 0, "n_steps": 1,
           "preview_samples": 2},
    "vae": {"m": 2, "n_test": 1, "epochs": 1, "batch": 1, "logpx_every": 0, "logpx_K": 1, "seed": 0},
}
_POSITIVE = {"dm": ("T", "lr", "R", "kde_bandwidth"), "vae": ("lr", "r")}
_NON_NEGATIVE = {"dm": ("score_reg", "step_size"), "vae": ()}
_TYPES = {
    "int": (_integer, "an integer"),
    "int | None": (lambda v: v is None or _integer(v), "an integer or null"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), "a finite number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
}


def validated_config(model: str, values: Any, name: str):
    """The document's config as a DiffusionConfig or VAEConfig, every field checked (see _AT_LEAST); the user's
    data files need not exist on this machine (a checkpoint is often opened elsewhere than where it was trained)."""
    from dataclasses import fields

    from .training.config import DiffusionConfig
    from .vae.config import VAEConfig

    if not isinstance(values, dict):
        raise CheckpointError(f"{name}: field 'config' must be an object, got {_short(values)}")
    for key in REQUIRED_CONFIG[model]:
        if key not in values:
            raise CheckpointError(f"{name}: field 'config' has no {key!r}")
    cls = VAEConfig if model == "vae" else DiffusionConfig
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise CheckpointError(f"{name}: field 'config' has unknown settings: {', '.join(unknown[:10])}")
    cfg = cls(**values)
    for f in fields(cls):
        ok, described = _TYPES[f.type]
        if not ok(getattr(cfg, f.name)):
            raise CheckpointError(f"{name}: field 'config.{f.name}' must be {described}, got {_short(getattr(cfg, f.name))}")
    for key, low in _AT_LEAST[model].items():
        value = getattr(cfg, key)
        if value is not None and value < low:
            raise CheckpointError(f"{name}: field 'config.{key}' must be >= {low}, got {value}")
    for key in _POSITIVE[model]:
        if getattr(cfg, key) <= 0:
            raise CheckpointError(f"{name}: field 'config.{key}' must be > 0, got {getattr(cfg, key)}")
    for key in _NON_NEGATIVE[model]:
        if getattr(cfg, key) < 0:
            raise CheckpointError(f"{name}: field 'config.{key}' must be >= 0, got {getattr(cfg, key)}")
    try:
        _check_choices(model, cfg)
        _check_device(cfg.device)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: field 'config': {exc}") from None
    return cfg


def _check_choices(model: str, cfg) -> None:
    """The named choices (dataset, preset, variant, likelihood...) are ones this build knows."""
    from .bounds.variants import get_variant
    from .data.images import IMAGE_SOURCES, PATH_SOURCES
    from .data.toy2d import TOY_DATASETS

    known = IMAGE_SOURCES if model == "vae" else (*TOY_DATASETS, "file", *IMAGE_SOURCES)
    if cfg.data not in known:
        raise ValueError(f"unknown dataset {cfg.data!r}; known: {', '.join(known)}")
    if (cfg.data == "file" or cfg.data in PATH_SOURCES) and not cfg.data_path:
        raise ValueError(f"dataset {cfg.data!r} reads the user's files but the config has no data_path")
    if model == "vae":
        from .vae.model import PRESETS

        if cfg.preset not in PRESETS:
            raise ValueError(f"unknown VAE preset {cfg.preset!r}; known: {', '.join(PRESETS)}")
        if cfg.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be bernoulli or gaussian, got {cfg.likelihood!r}")
        if cfg.train_stats not in ("running", "end-pass"):
            raise ValueError(f"train_stats must be running or end-pass, got {cfg.train_stats!r}")
        return
    get_variant(cfg.variant)
    if cfg.is_images:
        from .diffusion.unet import UNET_PRESETS

        if cfg.preset not in UNET_PRESETS:
            raise ValueError(f"unknown U-Net preset {cfg.preset!r}; known: {', '.join(UNET_PRESETS)}")


def _check_device(device: Any) -> None:
    import torch

    if not isinstance(device, str):
        raise TypeError(f"device must be a string, got {_short(device)}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"unknown device {device!r} ({exc})") from None
    if dev.type not in DEVICE_TYPES:
        raise ValueError(f"device {device!r}: checkpoints are trained on {' or '.join(DEVICE_TYPES)}")


# -- the safetensors layout ------------------------------------------------------------------------------
def tensor_layout(header: dict, data_len: int, name: str) -> list[tuple[str, str, tuple[int, ...], int, int]]:
    """(key, dtype, shape, begin, end) of every tensor the header declares, checked: known dtypes, sizes that match
    the shapes, and byte ranges that tile the data exactly (nothing overlaps, nothing is left over)."""
    entries = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{name}: tensor {key!r}: its header entry is not dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in ST_DTYPES:
            raise CheckpointError(f"{name}: tensor {key!r} has dtype {_short(dtype)}, which this reader does not support "
                                  f"({', '.join(ST_DTYPES)})")
        if not isinstance(shape, list) or len(shape) > 8 or not all(_integer(n) and n >= 0 for n in shape):
            raise CheckpointError(f"{name}: tensor {key!r} has an invalid shape {_short(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_integer(n) for n in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise CheckpointError(f"{name}: tensor {key!r} has data offsets {_short(offsets)} outside the "
                                  f"{data_len} bytes of tensor data (truncated?)")
        size = math.prod(shape) * np.dtype(ST_DTYPES[dtype]).itemsize
        if offsets[1] - offsets[0] != size:
            raise CheckpointError(f"{name}: tensor {key!r} of shape {shape} and dtype {dtype} needs {size} bytes, "
                                  f"its header gives {offsets[1] - offsets[0]}")
        entries.append((key, dtype, tuple(shape), offsets[0], offsets[1]))
    position = 0
    for key, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin != position:
            raise CheckpointError(f"{name}: tensor {key!r} starts at byte {begin} of the data, expected {position} "
                                  "(overlapping or missing tensor data)")
        position = end
    if position != data_len:
        raise CheckpointError(f"{name}: the tensors end at byte {position} of the data but the file holds {data_len}: "
                              "truncated or extra bytes")
    return entries


def tensors_from_buffer(buf, start: int, entries) -> dict[str, tuple[str, np.ndarray]]:
    """key -> (safetensors dtype, array) read from ``buf`` (data beginning at ``start``), without executing
    anything: numpy views of the bytes, copied where they are not aligned."""
    out = {}
    for key, dtype, shape, begin, end in entries:
        np_dtype = np.dtype(ST_DTYPES[dtype])
        arr = np.frombuffer(buf, dtype=np_dtype, count=math.prod(shape), offset=start + begin).reshape(shape)
        if not arr.flags.aligned:
            arr = arr.copy()
        out[key] = (dtype, arr)
    return out


# -- the tensors against the config -------------------------------------------------------------------------
def split_tensors(tensors: dict[str, tuple[str, np.ndarray]], model: str, cfg, step: int, name: str):
    """(weights, optimizer, rng_train or None, samples, trajectory or None) checked against the config's network;
    the trajectory is (frames (F, n, d), times (F,)), both float32."""
    weights, optim, samples, rng, trajectory = {}, {}, {}, None, {}
    for key, (dtype, arr) in tensors.items():
        if key.startswith("model."):
            if dtype not in FLOAT_DTYPES:
                raise CheckpointError(f"{name}: model weight {key[6:]!r} has dtype {dtype}; weights must be floating "
                                      f"point ({', '.join(FLOAT_DTYPES)})")
            weights[key[6:]] = arr
        elif key.startswith("optim."):
            match = _OPTIM.fullmatch(key)
            if match is None:
                raise CheckpointError(f"{name}: unknown optimizer tensor {key!r} (expected optim.exp_avg.I, "
                                      "optim.exp_avg_sq.I or optim.step.I)")
            if dtype not in FLOAT_DTYPES:
                raise CheckpointError(f"{name}: optimizer tensor {key!r} has dtype {dtype}; it must be floating point")
            optim[key[6:]] = arr
        elif key == "rng.train":
            if dtype != "U8" or arr.ndim != 1 or len(arr) not in (RNG_CPU_BYTES, RNG_CUDA_BYTES):
                raise CheckpointError(
                    f"{name}: tensor 'rng.train' ({dtype}, shape {list(arr.shape)}) is neither a CPU generator state "
                    f"(U8, {RNG_CPU_BYTES} bytes) nor a CUDA one (U8, {RNG_CUDA_BYTES} bytes)")
            rng = arr
        elif key.startswith("samples."):
            match = _SAMPLES.fullmatch(key)
            if match is None:
                raise CheckpointError(f"{name}: tensor {key!r} is not named samples.step_N")
            if dtype != "F32":
                raise CheckpointError(f"{name}: samples {key!r} have dtype {dtype}; samples are F32")
            samples[int(match.group(1))] = arr
        elif key.startswith("trajectory."):
            if key not in TRAJECTORY_KEYS:
                raise CheckpointError(f"{name}: unknown trajectory tensor {key!r} (expected {' and '.join(TRAJECTORY_KEYS)})")
            trajectory[key] = (dtype, arr)
        # other names (a later format's additions) are not read
    if not weights:
        raise CheckpointError(f"{name}: holds no model weights")
    expected_weights, optim_shapes, sample_dim = network_shapes(model, cfg, weights, samples, name)
    _compare_shapes(expected_weights, weights, name, optional_prefix="reference." if model == "vae" else None)
    _check_optimizer(optim, optim_shapes, name)
    _check_samples(model, samples, sample_dim, name)
    frames_times = check_trajectory(trajectory, sample_dim, name)
    if rng is not None and model == "dm" and not 0 < step <= cfg.iters:
        raise CheckpointError(f"{name}: field 'step' is {step}, but a resumable run's step must be within 1..{cfg.iters} "
                              "(its config's iters)")
    return weights, optim, rng, samples, frames_times


def check_trajectory(found: dict[str, tuple[str, np.ndarray]], dim: int | None, name: str):
    """(frames, times) of a checkpoint's reverse trajectory, or None when it holds none (a file from before
    trajectories were saved, or a run that records none); CheckpointError naming the problem otherwise."""
    if not found:
        return None
    missing = [k for k in TRAJECTORY_KEYS if k not in found]
    if missing:
        raise CheckpointError(f"{name}: trajectory tensor {missing[0]!r} is missing (a trajectory is "
                              f"{' and '.join(TRAJECTORY_KEYS)} together)")
    problem = trajectory_problem(found["trajectory.frames"][1], found["trajectory.times"][1], dim,
                                 found["trajectory.frames"][0], found["trajectory.times"][0])
    if problem is not None:
        raise CheckpointError(f"{name}: {problem}")
    return found["trajectory.frames"][1], found["trajectory.times"][1]


def trajectory_problem(frames: np.ndarray, times: np.ndarray, dim: int | None,
                       frames_dtype: str | None = None, times_dtype: str | None = None) -> str | None:
    """What is wrong with a stored reverse trajectory, in words naming the tensor, or None when it is sound:
    frames float32 of shape (F, n, d) with F, n >= 1 and d the data's dimension (when ``dim`` is known), times
    float32 of shape (F,), every one finite. Shared by checkpoints and run folders (core.io.run_dir)."""
    frames_dtype = frames_dtype or str(frames.dtype)
    times_dtype = times_dtype or str(times.dtype)
    if frames.dtype != np.float32:
        return f"trajectory frames have dtype {frames_dtype}; they must be float32"
    if times.dtype != np.float32:
        return f"trajectory times have dtype {times_dtype}; they must be float32"
    if frames.ndim != 3 or frames.shape[0] < 1 or frames.shape[1] < 1:
        return (f"trajectory frames have shape {list(frames.shape)}; expected (F, n, d): F >= 1 frames of "
                "n >= 1 samples")
    if times.ndim != 1:
        return f"trajectory times have shape {list(times.shape)}; expected (F,), one time per frame"
    if len(times) != len(frames):
        return f"trajectory has {len(frames)} frames but {len(times)} times; each frame needs its time"
    if dim is not None and frames.shape[2] != dim:
        return (f"trajectory frames have shape {list(frames.shape)}: samples of dimension {frames.shape[2]}, "
                f"but the run's data have dimension {dim}")
    if not np.isfinite(times).all():
        return "trajectory times are not all finite (NaN or infinite)"
    return None


def network_shapes(model: str, cfg, weights: dict, samples: dict, name: str):
    """(weight shapes by name, Adam moment shapes by parameter index or None, sample dimension or None) of the
    network the config describes; the data's dimension, when the config does not fix it, is read from the
    weights and samples and then checked against everything else."""
    if model == "vae":
        return _vae_shapes(cfg, weights, name)
    if cfg.is_images:
        return _unet_shapes(cfg, weights, samples, name)
    from .data.toy2d import TOY_DATASETS

    if cfg.data in TOY_DATASETS:
        d = 2
    else:
        first = weights.get("layers.0.weight")
        if first is None or first.ndim != 2 or first.shape[1] < 2:
            raise CheckpointError(f"{name}: model weight 'layers.0.weight' is missing or not a (hidden, d + 1) matrix")
        d = int(first.shape[1]) - 1
    widths = [d + 1] + [cfg.hidden] * 3 + [d]
    expected = {}
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        expected[f"layers.{i}.weight"] = (b, a)
        expected[f"layers.{i}.bias"] = (b,)
    optim = [(a, b) for a, b in zip(widths, widths[1:])] + [(1, b) for b in widths[1:]]
    return expected, optim, d


def _unet_shapes(cfg, weights: dict, samples: dict, name: str):
    from .diffusion.unet import UNET_PRESETS

    conv_in = weights.get("conv_in.weight")
    if conv_in is None or conv_in.ndim != 4 or not 1 <= conv_in.shape[1] <= 16:
        raise CheckpointError(f"{name}: model weight 'conv_in.weight' is missing or not a U-Net input convolution")
    channels = int(conv_in.shape[1])
    dims = sorted({int(a.shape[1]) for a in samples.values() if a.ndim == 2})
    if dims:  # the image size is that of the samples
        side = math.isqrt(dims[0] // channels)
        if side * side * channels != dims[0] or not 1 <= side <= MAX_IMAGE_SIDE:
            raise CheckpointError(f"{name}: samples of dimension {dims[0]} are not square images of {channels} channel(s)")
        candidates = [side]
    else:  # no samples: every image size that changes the network (attention at some level, or none)
        levels = len(UNET_PRESETS[cfg.preset][1])
        candidates = sorted({16 * 2**i for i in range(levels)} | {3 * 2 ** (levels - 1)})
    got = {k: tuple(v.shape) for k, v in weights.items()}
    first = None
    for side in candidates:
        try:
            expected, optim = _unet_param_shapes(cfg.preset, channels, side)
        except ValueError as exc:  # ConfigError: a size this U-Net cannot take
            raise CheckpointError(f"{name}: {channels}x{side}x{side} images: {exc}") from None
        first = first or (expected, optim)
        if got == expected:
            return expected, optim, channels * side * side
    return first[0], first[1], channels * candidates[0] ** 2 if dims else None


@functools.lru_cache(maxsize=32)
def _unet_param_shapes(preset: str, channels: int, side: int):
    """(weight shapes by name, parameter shapes in optimizer order) of one U-Net member, built on the meta device
    (no memory)."""
    import torch

    from .diffusion.unet import EnsembleUNet, unet_spec

    with torch.device("meta"):
        net = EnsembleUNet(1, unet_spec(preset, channels, side))
    return ({n: tuple(p.shape[1:]) for n, p in zip(net.names, net.stacked)},
            [tuple(p.shape[1:]) for p in net.parameters()])


def _vae_shapes(cfg, weights: dict, name: str):
    import torch

    from .vae.model import PRESETS, VAE

    first = weights.get("encoder.0.weight")
    if first is None or first.ndim != 2 or first.shape[1] < 1:
        raise CheckpointError(f"{name}: model weight 'encoder.0.weight' is missing or not an (hidden, pixels) matrix")
    d = int(first.shape[1])
    hidden, latent = PRESETS[cfg.preset]
    with torch.device("meta"):
        net = VAE(d, hidden, latent, cfg.likelihood)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}, None, d


def _compare_shapes(expected: dict, weights: dict, name: str, optional_prefix: str | None = None) -> None:
    got = {k: tuple(v.shape) for k, v in weights.items()}
    missing = sorted(k for k in set(expected) - set(got) if not (optional_prefix and k.startswith(optional_prefix)))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if extra:
            parts.append(f"unexpected {extra[:5]}")
        if wrong:
            parts.append("wrong shape " + ", ".join(f"{k!r} {list(got[k])} (expected {list(expected[k])})" for k in wrong[:5]))
        raise CheckpointError(f"{name}: the model weights do not fit the network of its config: {'; '.join(parts)}")


def _check_optimizer(optim: dict, shapes: list | None, name: str) -> None:
    groups: dict[int, set[str]] = {}
    for key in optim:
        kind, index = key.rsplit(".", 1)
        groups.setdefault(int(index), set()).add(kind)
    for index, kinds in sorted(groups.items()):
        if kinds != {"exp_avg", "exp_avg_sq", "step"}:
            missing = sorted({"exp_avg", "exp_avg_sq", "step"} - kinds)
            raise CheckpointError(f"{name}: optimizer state of parameter {index} lacks {', '.join(f'optim.{m}.{index}' for m in missing)}")
        if shapes is not None and index >= len(shapes):
            raise CheckpointError(f"{name}: optimizer state for parameter {index}, but the network has {len(shapes)}")
        step = optim[f"step.{index}"]
        if step.shape != (1,) or not np.isfinite(step).all() or float(step[0]) < 0:
            raise CheckpointError(f"{name}: 'optim.step.{index}' must hold one finite count >= 0, got shape "
                                  f"{list(step.shape)}")
        for kind in ("exp_avg", "exp_avg_sq"):
            arr = optim[f"{kind}.{index}"]
            if shapes is not None and tuple(arr.shape) != tuple(shapes[index]):
                raise CheckpointError(f"{name}: Adam moment 'optim.{kind}.{index}' has shape {list(arr.shape)}, but its "
                                      f"parameter has shape {list(shapes[index])}")


def _check_samples(model: str, samples: dict, dim: int | None, name: str) -> None:
    for step, arr in samples.items():
        key = f"samples.step_{step}"
        if model == "vae":
            ok = arr.ndim in (3, 4) and arr.shape[0] >= 1 and (dim is None or math.prod(arr.shape[1:]) == dim)
            want = f"(n, H, W) or (n, H, W, C) images of {dim} pixels"
        else:
            ok = arr.ndim == 2 and arr.shape[0] >= 1 and (dim is None or arr.shape[1] == dim)
            want = f"(n, {dim if dim is not None else 'd'}) points"
        if not ok:
            raise CheckpointError(f"{name}: samples {key!r} have shape {list(arr.shape)}; expected {want}")


# -- resuming on another device ----------------------------------------------------------------------------
def rng_device(state: np.ndarray) -> str:
    """'cpu' or 'cuda': the kind of generator a saved training random state comes from (by its size)."""
    return "cuda" if len(state) == RNG_CUDA_BYTES else "cpu"


def reseeded_state(seed: int, step: int, device_type: str) -> np.ndarray:
    """A fresh generator state for ``device_type`` derived from the run's seed and the step it continues after."""
    from .seeding import STREAMS

    words = np.random.SeedSequence([int(seed), STREAMS["train"], int(step), 0x5EED]).generate_state(2, dtype=np.uint32)
    value = ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)
    if device_type == "cuda":  # CUDA's Philox state: the seed and the offset, 8 bytes each
        return np.frombuffer(struct.pack("<Qq", value, 0), dtype=np.uint8).copy()
    import torch

    gen = torch.Generator(device="cpu")
    gen.manual_seed(value)
    return gen.get_state().numpy().copy()


def device_note(saved: str, target: str, seed: int, step: int) -> str:
    """The note a checkpoint carries when it continues on another kind of device than it was saved on."""
    names = {"cuda": "CUDA", "cpu": "CPU"}
    return (f"saved on {names.get(saved, saved)}, continues on {names.get(target, target)}: the {names.get(target, target)} "
            f"random stream is re-seeded from the run's seed ({seed}) at step {step}, so the continuation is not "
            "bit-identical to an uninterrupted run")
