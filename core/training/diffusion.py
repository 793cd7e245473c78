"""Diffusion training as a generator of records, for one run or a batched ensemble of runs.

Points train the paper's score MLP; images train the U-Net on dequantised, logit-transformed pixels (fresh
dequantisation noise for every minibatch, from the run's training stream).

Records are plain dicts: ``start``, one ``step`` per iteration (step, DSM loss, wall time), ``eval`` every
``eval_every`` iterations and at the end, ``error`` when a run's loss stops being finite (naming the step),
then ``end`` or ``cancelled``. The consumer may stop iterating at any point: no work is left running.
An iteration is one pass over the shuffled training set in minibatches of ``batch`` (a single full-batch
step when batch >= m), as in the published code. With ``score_reg`` = lambda > 0 the optimized objective is
DSM + lambda * E|s_theta(y, t)|^2 (see dsm_terms); the recorded loss stays the DSM loss alone
(docs/t-selection.md#score-norm-regulariser).
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .. import __version__
from ..diffusion.dsm import dsm_terms
from ..data.image_transforms import dequantize, logit_transform
from ..diffusion.score_mlp import EnsembleMLP
from ..diffusion.unet import EnsembleUNet, unet_spec
from ..errors import ConfigError
from ..records import MEMBER
from ..sde import VPSDE
from ..seeding import torch_generator
from .config import DiffusionConfig, load_run_data_with_shape
from .evaluate import evaluate_ensemble

SHARED_SETTINGS = (
    "m", "n_test", "iters", "batch", "lr", "eval_every", "n_steps", "n_gen", "test_kl_draws", "hidden", "device",
    "dsm_eval_draws", "frame_every", "trajectory_frames", "score_reg", "preset", "step_size", "is_images",
    "preview_evals", "preview_samples",
)


def check_ensemble(configs: Sequence[DiffusionConfig]) -> None:
    """Runs trained together must agree on every shape- and schedule-defining setting."""
    if not configs:
        raise ConfigError("an ensemble needs at least one run")
    for cfg in configs:
        cfg.validate()
    for key in SHARED_SETTINGS:
        values = {getattr(c, key) for c in configs}
        if len(values) > 1:
            raise ConfigError(f"runs trained together must share {key}; got {sorted(map(str, values))}")


def build_model(configs: Sequence[DiffusionConfig], shape: Sequence[int]) -> EnsembleMLP | EnsembleUNet:
    """The ensemble network for examples of ``shape`` ((d,) points: the MLP; (C, H, W) images: the U-Net),
    member e initialized from run e's own `init` stream."""
    device = torch.device(configs[0].device)
    if configs[0].is_images:
        model = EnsembleUNet(len(configs), unet_spec(configs[0].preset, shape[0], shape[1])).to(device)
    else:
        model = EnsembleMLP(len(configs), shape[0], configs[0].hidden).to(device)
    return model.initialize([torch_generator(c.seed, "init", device) for c in configs])


def to_logit_space(x: torch.Tensor, gens: Sequence[torch.Generator]) -> torch.Tensor:
    """Dequantise images in [0, 1] with each member's stream and map them to R^d (logit transform)."""
    return logit_transform(dequantize(x, gens))[0]


def train_diffusion(
    config: DiffusionConfig, should_stop: Callable[[], bool] | None = None, resume: dict | None = None
) -> Iterator[dict]:
    """Train one run; yields its records (without the ensemble's ``member`` index).

    ``resume`` is the ``train_state`` of an earlier evaluation record (weights, Adam state, random stream
    and step): training continues from there with exactly the numbers the uninterrupted run would give.
    """
    for record in train_diffusion_ensemble([config], should_stop, [resume] if resume else None):
        record.pop(MEMBER, None)
        yield record


def train_diffusion_ensemble(
    configs: Sequence[DiffusionConfig],
    should_stop: Callable[[], bool] | None = None,
    resume: Sequence[dict] | None = None,
) -> Iterator[dict]:
    """Train every run of ``configs`` as one batched ensemble; records carry ``member`` = index into configs.

    Every evaluation record carries ``train_state`` (see train_diffusion) so that a run can be resumed.
    """
    check_ensemble(configs)
    first = configs[0]
    device = torch.device(first.device)
    sde = VPSDE()
    data = [load_run_data_with_shape(c) for c in configs]
    shapes = {shape for _, _, shape in data}
    if len(shapes) > 1:
        raise ConfigError(f"runs trained together must have data of one shape; got {sorted(shapes)}")
    x_train = torch.stack([torch.from_numpy(tr) for tr, _, _ in data]).to(device)
    x_test = torch.stack([torch.from_numpy(te) for _, te, _ in data]).to(device)
    n_members, m, d = x_train.shape
    model = build_model(configs, data[0][2])
    optimizer = torch.optim.Adam(model.parameters(), lr=first.lr, fused=True)  # one kernel for every parameter: CPU and CUDA
    gens = [torch_generator(c.seed, "train", device) for c in configs]
    T = torch.tensor([c.T for c in configs], dtype=torch.float32, device=device)
    alive = torch.ones(n_members, dtype=torch.bool, device=device)
    alive_list = [True] * n_members
    n_params = sum(p[0].numel() for p in model.parameters())
    start = time.perf_counter()
    first_step = 1
    if resume:
        first_step = restore_train_state(model, optimizer, gens, resume, first.iters) + 1
    else:
        for e, cfg in enumerate(configs):
            yield {"kind": "start", MEMBER: e, "config": cfg.as_dict(), "n_params": n_params, "version": __version__}

    step = first_step - 1
    epoch_loss = [float("nan")] * n_members
    minibatch_loss = [float("nan")] * n_members
    for step in range(first_step, first.iters + 1):
        if should_stop is not None and should_stop():
            yield from _closing(configs, alive_list, "cancelled", step - 1, start)
            return
        sums = torch.zeros(n_members, dtype=torch.float64, device=device)
        batches = _minibatches(x_train, first.batch, gens)
        for xb in batches:
            if first.is_images:
                xb = to_logit_space(xb, gens)
            optimizer.zero_grad(set_to_none=True)
            point_losses, score_sq = dsm_terms(model, sde, xb, T, gens)
            losses = point_losses.mean(dim=1)
            objective = losses + first.score_reg * score_sq.mean(dim=1) if first.score_reg else losses
            finite = torch.isfinite(objective)
            if not bool((finite | ~alive).all()):
                for e in torch.nonzero(alive & ~finite).flatten().tolist():
                    alive[e] = alive_list[e] = False
                    value = float(objective[e].detach())
                    yield {
                        "kind": "error", MEMBER: e, "step": step, "wall": time.perf_counter() - start,
                        "message": f"training loss became {value} at step {step}; the run was stopped there "
                        "(try a smaller learning rate, and check the data's scale: points should be of order 1). "
                        "Results up to the last evaluation are kept.",
                    }
                if not any(alive_list):
                    return
            if not all(alive_list):
                objective = torch.where(alive, objective, torch.zeros_like(objective))
                losses = torch.where(alive, losses, torch.zeros_like(losses))
            objective.sum().backward()
            optimizer.step()
            sums += losses.detach()
        minibatch_loss = losses.detach().tolist()
        epoch_loss = (sums / len(batches)).tolist()
        wall = time.perf_counter() - start
        for e in range(n_members):
            if alive_list[e]:
                yield {"kind": "step", MEMBER: e, "step": step, "loss": epoch_loss[e], "wall": wall}
        if first.evaluates_after(step):
            members = [e for e in range(n_members) if alive_list[e]]
            try:
                records = evaluate_ensemble(
                    model, sde, configs, x_train, x_test, epoch_loss, minibatch_loss, members, step, should_stop,
                    final=step == first.iters,
                )
            except InterruptedError:
                yield from _closing(configs, alive_list, "cancelled", step, start)
                return
            wall = time.perf_counter() - start
            for record in records:
                record["wall"] = wall
                record["model_state"] = {k: v.numpy() for k, v in model.member_state_dict(record[MEMBER]).items()}
                record["train_state"] = capture_train_state(model, optimizer, gens, record[MEMBER], step)
                yield record
    yield from _closing(configs, alive_list, "finished", step, start)


def _closing(configs, alive_list, status: str, step: int, start: float) -> Iterator[dict]:
    wall = time.perf_counter() - start
    for e in range(len(configs)):
        if alive_list[e]:
            yield {"kind": "end" if status == "finished" else status, MEMBER: e, "step": step, "status": status, "wall": wall}


def _minibatches(x: torch.Tensor, batch: int, gens: Sequence[torch.Generator]) -> list[torch.Tensor]:
    """One epoch of minibatches, shuffled per member from its own stream; the whole set when batch >= m."""
    n_members, m, d = x.shape
    if batch >= m:
        return [x]
    order = torch.stack([torch.randperm(m, generator=g, device=g.device) for g in gens]).to(x.device)
    shuffled = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, d))
    return list(torch.split(shuffled, batch, dim=1))


def capture_train_state(model: EnsembleMLP, optimizer: torch.optim.Adam, gens, e: int, step: int) -> dict:
    """Member e's Adam moments, step count and training random stream, as numpy (small, thread-safe)."""
    optim = {}
    for i, param in enumerate(model.parameters()):
        state = optimizer.state.get(param, {})
        if state:
            optim[f"exp_avg.{i}"] = state["exp_avg"][e].detach().cpu().numpy().copy()
            optim[f"exp_avg_sq.{i}"] = state["exp_avg_sq"][e].detach().cpu().numpy().copy()
            optim[f"step.{i}"] = np.array([float(state["step"])], dtype=np.float64)
    return {"step": step, "optimizer": optim, "rng_train": gens[e].get_state().numpy().copy(),
            "model": {k: v.numpy() for k, v in model.member_state_dict(e).items()}}


def restore_train_state(model: EnsembleMLP, optimizer: torch.optim.Adam, gens, states: Sequence[dict], iters: int) -> int:
    """Put each member back where its ``train_state`` left it; returns the step to continue after."""
    steps = {int(s["step"]) for s in states}
    if len(steps) != 1:
        raise ConfigError(f"runs resumed together must stop at the same step; got {sorted(steps)}")
    step = steps.pop()
    if not 0 < step <= iters:
        raise ConfigError(f"cannot resume at step {step} of a run of {iters} iterations")
    params = list(model.parameters())
    for e, state in enumerate(states):
        model.load_member_state_dict(e, {k: torch.as_tensor(np.asarray(v)) for k, v in state["model"].items()})
        gens[e].set_state(torch.as_tensor(np.asarray(state["rng_train"], dtype=np.uint8)))
        with torch.no_grad():
            for i, param in enumerate(params):
                if f"exp_avg.{i}" not in state["optimizer"]:
                    continue
                slot = optimizer.state[param]
                if not slot:
                    slot["step"] = torch.tensor(0.0)
                    slot["exp_avg"] = torch.zeros_like(param)
                    slot["exp_avg_sq"] = torch.zeros_like(param)
                slot["step"] = torch.tensor(float(np.asarray(state["optimizer"][f"step.{i}"]).reshape(-1)[0]))
                slot["exp_avg"][e].copy_(torch.as_tensor(state["optimizer"][f"exp_avg.{i}"]))
                slot["exp_avg_sq"][e].copy_(torch.as_tensor(state["optimizer"][f"exp_avg_sq.{i}"]))
    return step
