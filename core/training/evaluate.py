"""One evaluation of a diffusion ensemble: every bound variant's terms, the test gap and the samples.

For images everything happens in logit space on a dequantisation drawn from the evaluation stream: the
bound (variants `exact` and `reference-images`), the DSM gap and the KDE test KL; the test metric proper is
bits per dimension from the ELBO; generated samples and memorization distances are in pixel space [0, 1].

A single Euler-Maruyama run from pi produces the generated samples, the test KL, the memorization distances
and (for the `exact` variant) the score scale L, all in the same pass. Evaluation noise comes from each run's
own `eval` stream, re-seeded at every evaluation, so successive evaluations use common random numbers and a
run's numbers do not depend on how often it is evaluated.

The math: docs/diffusion-bound.md (the terms, #variants, #images) and docs/test-metrics.md (#test-kl-error-bar,
#dsm-gap, #memorization, #test-bpd).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..bounds.diffusion_bound import assemble_bound, encoder_terms
from ..bounds.variants import VARIANTS, BoundVariant
from ..data.image_transforms import dequantize, inverse_logit, logit_transform
from ..diffusion.dsm import dsm_eval
from ..diffusion.elbo import test_bpd
from ..diffusion.noise import normal
from ..diffusion.sampler import euler_maruyama
from ..diffusion.score_mlp import EnsembleMLP
from ..metrics.kde import kde_kl_draws
from ..metrics.memorization import memorization_summary
from ..records import MEMBER
from ..sde import VPSDE
from ..seeding import torch_generator
from .config import DiffusionConfig

CLEAN_BATCH_SIZE = 128
IMAGE_VARIANTS = ("exact", "reference-images")
IMAGE_CHUNK = 256  # images per network call in the DSM evaluation: bounded activation memory


def applicable_variants(cfg: DiffusionConfig) -> tuple[str, ...]:
    """Variants computed at every evaluation: all for points; the Swiss roll code's is not one for images
    (docs/diffusion-bound.md#variants)."""
    return IMAGE_VARIANTS if cfg.is_images else tuple(VARIANTS)
CLEAN_BATCH_DRAWS = 100


@torch.no_grad()
def clean_batch_L(
    model: EnsembleMLP, sde: VPSDE, x: torch.Tensor, T: torch.Tensor, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """Reference image code's L: max over 100 draws t ~ U(0, T) of the batch-mean |s_theta(x, t)| on clean x
    (docs/diffusion-bound.md#reference-images)."""
    x = x[:, :CLEAN_BATCH_SIZE]
    n = x.shape[1]
    best = torch.zeros(x.shape[0], device=x.device)
    for _ in range(CLEAN_BATCH_DRAWS):
        t = torch.stack([torch.rand((), generator=g, device=g.device) for g in generators]).to(x.device) * T
        norms = model.score(x, t.unsqueeze(1).expand(-1, n), sde).norm(dim=-1).mean(dim=1)
        best = torch.maximum(best, norms)
    return best


@torch.no_grad()
def evaluate_ensemble(
    model: EnsembleMLP,
    sde: VPSDE,
    configs: Sequence[DiffusionConfig],
    x_train: torch.Tensor,
    x_test: torch.Tensor | None,
    last_epoch_loss: Sequence[float],
    last_minibatch_loss: Sequence[float],
    members: Sequence[int],
    step: int,
    should_stop: Callable[[], bool] | None = None,
    final: bool = True,
) -> list[dict]:
    """Evaluation records (kind "eval") for the listed members of the ensemble.

    ``final`` = False with ``preview_evals`` set makes a light preview: fewer generated samples, one test-KL
    draw (DiffusionConfig.eval_sampling); the record says so (``preview``, ``n_gen``, ``test_kl_draws``).
    ``x_test`` None (core.api without test data, points only): no test metrics, and no test-KL draws beyond the
    first."""
    device = x_train.device
    first = configs[0]
    images = first.is_images
    T = torch.tensor([c.T for c in configs], dtype=torch.float32, device=device)
    gens = [torch_generator(c.seed, "eval", device) for c in configs]
    pixels_train = x_train
    if images:
        bpd_mean, bpd_se = test_bpd(model, sde, x_test, T, gens)
        x_train = logit_transform(dequantize(x_train, gens))[0]
        x_test = logit_transform(dequantize(x_test, gens))[0]
    # The first draw of n_gen samples comes from the evaluation stream and gives L, the shown samples and the
    # frames; the test KL's other D - 1 draws come from a stream of their own, so the bound does not depend on D.
    n_gen, n_draws = first.eval_sampling(final)
    if x_test is None:
        n_draws = 1
    preview = first.preview_evals and not final
    y0 = normal(gens, (n_gen, x_train.shape[-1]), device)
    steps = [c.steps for c in configs]  # differ with a fixed step size and several T
    frame_every = [c.frame_interval for c in configs] if first.frame_interval else None
    generated = euler_maruyama(model, sde, y0, T, steps, gens, frame_every=frame_every, should_stop=should_stop)
    all_samples = generated.samples
    if n_draws > 1:
        draw_gens = [torch_generator(c.seed, "eval-draws", device) for c in configs]
        y_extra = normal(draw_gens, ((n_draws - 1) * n_gen, x_train.shape[-1]), device)
        extra = euler_maruyama(model, sde, y_extra, T, steps, draw_gens, should_stop=should_stop)
        all_samples = torch.cat([all_samples, extra.samples], dim=1)
    L_by_method = {"generator": generated.L}
    if any(VARIANTS[v].lipschitz == "train-reverse-clock" for v in applicable_variants(first)):
        probe = euler_maruyama(model, sde, x_train, T, steps, gens, probe_reverse_clock=True, should_stop=should_stop)
        L_by_method["train-reverse-clock"] = probe.L
    L_by_method["clean-batch"] = clean_batch_L(model, sde, x_train, T, gens)
    chunk = IMAGE_CHUNK if images else None
    dsm_train = dsm_eval(model, sde, x_train, T, gens, first.dsm_eval_draws, chunk)
    dsm_test = None if x_test is None else dsm_eval(model, sde, x_test, T, gens, first.dsm_eval_draws, chunk)

    records = []
    for e in members:
        cfg = configs[e]
        score_matching = {
            "full-pass": float(dsm_train[e]),
            "last-epoch": float(last_epoch_loss[e]),
            "last-minibatch": float(last_minibatch_loss[e]),
        }
        bounds = {}
        for name in applicable_variants(cfg):
            variant = VARIANTS[name]
            bounds[name] = _bound_for(variant, cfg, x_train[e], score_matching, float(L_by_method[variant.lipschitz][e]), gens[e], sde)
        chosen = bounds[cfg.variant]
        draws = all_samples[e].reshape(n_draws, n_gen, -1)
        samples = draws[0]
        shown = inverse_logit(samples) if images else samples
        record = {
            "kind": "eval",
            MEMBER: e,
            "step": step,
            "bound": chosen["total"],
            **{k: v for k, v in chosen.items() if k != "total"},
            "bounds": bounds,
            "test_kl_draws": n_draws,
            "n_gen": n_gen,
            "preview": preview,
            "dsm_train": float(dsm_train[e]),
            **memorization_summary(shown, pixels_train[e]),
            "samples": shown.float().cpu().numpy(),
        }
        if x_test is not None:
            test_kl = kde_kl_draws(x_test[e], draws, cfg.kde_bandwidth)
            record.update(test_kl=test_kl.mean, test_kl_se=test_kl.se, dsm_test=float(dsm_test[e]),
                          dsm_gap=float(dsm_test[e] - dsm_train[e]))
        if images:
            record["test_bpd"] = float(bpd_mean[e])
            record["test_bpd_se"] = float(bpd_se[e])
        if generated.frames is not None:
            frames = generated.frames[e]
            record["frames"] = (inverse_logit(frames) if images else frames).float().cpu().numpy()
            record["frame_times"] = generated.frame_times[e].float().cpu().numpy()
        records.append(record)
    return records


def _bound_for(
    variant: BoundVariant,
    cfg: DiffusionConfig,
    x: torch.Tensor,
    score_matching: dict[str, float],
    L: float,
    generator: torch.Generator,
    sde: VPSDE,
) -> dict:
    enc = encoder_terms(x, cfg.T, variant, cfg.mc_samples, generator, sde)
    n_steps = cfg.bound_steps(truncate=variant.truncate_steps)
    bound = assemble_bound(
        variant, cfg.T, score_matching[variant.score_matching], enc, L, x.shape[0], n_steps, cfg.R, cfg.mc_samples, sde
    )
    return bound.as_dict()

