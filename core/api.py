"""The bound for any score network: the public API for users' own diffusion models (docs/own-models.md).

    from core.api import diffusion_bound
    result = diffusion_bound(lambda y, t: my_net(y, t), x_train, T=0.6, x_test=x_test)
    result["bound"], result["terms"]["generator"], result["test_kl"], result["test_kl_se"]

``score_fn(y, t)`` takes points y of shape (n, d) and their forward times t of shape (n,) and returns, per
``output``: the score s(y, t) ("score"), the predicted noise eps(y, t) with s = -eps / sigma(t) ("eps"), or the
paper's drift a(y, t) with s = a / sqrt(beta(t)) ("drift"), all for the paper's VP-SDE schedule
(beta_min = 0.1, beta_max = 20 unless ``sde`` says otherwise). The evaluation is exactly the one our own runs
make (core/training/evaluate.py): every bound variant's terms with the encoder_info's Monte Carlo error, and
with test points the KDE test KL with its standard error over draws and the DSM gap. The network is called
in chunks of ``chunk`` points, without gradients, on the device of x_train.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from .errors import ConfigError
from .sde import VPSDE
from .training.config import DiffusionConfig
from .training.evaluate import evaluate_ensemble

OUTPUTS = ("score", "eps", "drift")
NO_REFERENCE_2D_FOR_EPS = "not computed: its probe queries the network at t = 0, where eps gives no score"
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CallableScoreModel:
    """A user's score function seen as a one-member ensemble: ``score(y (1, n, d), t (1, n), sde)``."""

    n_members = 1

    def __init__(self, score_fn: ScoreFn, output: str = "score", chunk: int = 4096) -> None:
        if output not in OUTPUTS:
            raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if chunk < 1:
            raise ConfigError(f"chunk must be >= 1, got {chunk}")
        self.score_fn, self.output, self.chunk = score_fn, output, chunk

    def score(self, y: torch.Tensor, t: torch.Tensor, sde: VPSDE, t_net: torch.Tensor | None = None) -> torch.Tensor:
        """The score at (y, t) for y of shape (1, n, d) and t of shape (1, n)."""
        if y.shape[0] != 1:
            raise ConfigError(f"a user's score function is one model: got {y.shape[0]} members")
        with torch.no_grad():
            parts = [self._one_chunk(y[0, i : i + self.chunk], t[0, i : i + self.chunk], sde)
                     for i in range(0, y.shape[1], self.chunk)]
        return torch.cat(parts).unsqueeze(0)

    def _one_chunk(self, y: torch.Tensor, t: torch.Tensor, sde: VPSDE) -> torch.Tensor:
        dtype = _parameter_dtype(self.score_fn) or y.dtype  # a float64 module gets float64 inputs
        try:
            out = self.score_fn(y.to(dtype), t.to(dtype))
        except Exception as exc:  # noqa: BLE001 (the user's network: its error, named, not a traceback)
            raise ConfigError(f"score_fn(y, t) failed on y {tuple(y.shape)}, t {tuple(t.shape)}: "
                              f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(out, torch.Tensor) or out.shape != y.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ConfigError(f"score_fn(y, t) must return a tensor shaped like y {tuple(y.shape)}, got {got}")
        out = out.to(y.dtype)
        if not bool(torch.isfinite(out).all()):
            raise ConfigError(f"score_fn returned non-finite values (NaN or inf) for t in [{float(t.min()):g}, {float(t.max()):g}]")
        if self.output == "eps":
            return -out / torch.sqrt(sde.var(t)).unsqueeze(-1)
        if self.output == "drift":
            return out / torch.sqrt(sde.beta(t)).unsqueeze(-1)
        return out


def _parameter_dtype(fn) -> torch.dtype | None:
    """The floating dtype of a torch module's parameters (None for other callables or parameter-free modules)."""
    if isinstance(fn, torch.nn.Module):
        for param in fn.parameters():
            if param.is_floating_point():
                return param.dtype
    return None


def _points(x: torch.Tensor | None, name: str, device: torch.device | None = None) -> torch.Tensor | None:
    if x is None:
        return None
    x = torch.as_tensor(x)
    if x.dim() < 2:
        raise ConfigError(f"{name} must have shape (n, d) (or (n, C, H, W), flattened), got {tuple(x.shape)}")
    x = x.reshape(x.shape[0], -1).to(device=device or x.device, dtype=torch.float32)
    if x.shape[0] < 2:
        raise ConfigError(f"{name} needs at least 2 points, got {x.shape[0]}")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(f"{name} has NaN or infinite values")
    return x


def diffusion_bound(
    score_fn: ScoreFn,
    x_train: torch.Tensor,
    T: float,
    *,
    x_test: torch.Tensor | None = None,
    output: str = "score",
    variant: str = "exact",
    R: float = 5.0,
    N: int = 1000,
    K: int = 1000,
    n_gen: int = 1000,
    test_kl_draws: int = 8,
    dsm_draws: int = 20,
    kde_bandwidth: float = 0.1,
    seed: int = 0,
    chunk: int = 4096,
    score_matching: float | None = None,
    sde: VPSDE = VPSDE(),
) -> dict:
    """Every term of the bound B(T) for ``score_fn`` on the training points, and the test gap with ``x_test``.

    Returns a dict: ``bound`` (the chosen variant's total), ``terms`` (score_matching, encoder_info with
    ``encoder_info_se``, encoder_prior, generator, L, sum_beta, N, m, R, K), ``bounds`` (every variant's
    terms), ``dsm_train``, ``samples`` (the first draw of n_gen generated points, numpy), memorization
    distances and, with ``x_test``, ``test_kl``, ``test_kl_se``, ``dsm_test`` and ``dsm_gap``.
    ``score_matching`` overrides the training DSM loss (default: a full pass, ``dsm_draws`` draws per point),
    e.g. with the last epoch's loss as the published Swiss roll code does (docs/own-models.md).
    """
    train = _points(x_train, "x_train")
    device = train.device
    test = _points(x_test, "x_test", device)
    if test is not None and test.shape[1] != train.shape[1]:
        raise ConfigError(f"x_test has {test.shape[1]} dimensions, x_train {train.shape[1]}")
    if output == "eps" and variant == "reference-2d":
        raise ConfigError("variant reference-2d queries the network at t = 0, where a noise prediction gives no "
                          "score (score = -eps / sigma(t), sigma(0) = 0): use exact or reference-images with eps")
    cfg = DiffusionConfig(
        data="file", m=train.shape[0], n_test=test.shape[0] if test is not None else 2, T=float(T), seed=seed,
        variant=variant, R=R, n_steps=N, mc_samples=K, n_gen=n_gen, test_kl_draws=test_kl_draws,
        kde_bandwidth=kde_bandwidth, dsm_eval_draws=dsm_draws, device=str(device), trajectory_frames=0,
    )
    _check(cfg)
    model = CallableScoreModel(score_fn, output, chunk)
    given = math.nan if score_matching is None else float(score_matching)
    record = evaluate_ensemble(model, sde, [cfg], train[None], None if test is None else test[None], [given], [given],
                               [0], 0)[0]
    # Variants that read the last epoch's loss get the user's value, or else the full pass like `exact`.
    record = _with_score_matching(record, record["dsm_train"] if score_matching is None else given, cfg,
                                  replace_all=score_matching is not None)
    if output == "eps":  # its reverse-clock probe starts at t = 0: no score there (see the check above)
        ref = record["bounds"]["reference-2d"]
        record["bounds"]["reference-2d"] = {**{k: (math.nan if isinstance(v, float) else v) for k, v in ref.items()},
                                            "note": NO_REFERENCE_2D_FOR_EPS}
    terms = {k: record[k] for k in ("score_matching", "encoder_info", "encoder_info_se", "encoder_prior", "generator",
                                    "L", "sum_beta", "N", "m", "R", "K")}
    keep = ("bound", "variant", "bounds", "dsm_train", "samples", "test_kl", "test_kl_se", "test_kl_draws", "dsm_test",
            "dsm_gap", "nn_dist_mean", "nn_dist_median", "nn_dist_min", "train_nn_median", "nn_copy_fraction")
    return {"T": float(T), "terms": terms, **{k: record[k] for k in keep if k in record}}


def _check(cfg: DiffusionConfig) -> None:
    """The settings' checks without the data file (the points are given): core's messages name the setting."""
    from .bounds.variants import get_variant
    from .config_checks import diffusion_time, em_steps, int_at_least, positive_number

    diffusion_time(cfg.T)
    em_steps(cfg.n_steps)
    get_variant(cfg.variant)
    int_at_least("K", cfg.mc_samples, 1)
    int_at_least("n_gen", cfg.n_gen, 2)
    int_at_least("test_kl_draws", cfg.test_kl_draws, 1)
    int_at_least("dsm_draws", cfg.dsm_eval_draws, 1)
    for name in ("R", "kde_bandwidth"):
        positive_number(name, getattr(cfg, name))


def _with_score_matching(record: dict, value: float, cfg: DiffusionConfig, replace_all: bool) -> dict:
    """Each variant's terms with ``value`` as its score_matching where it had none (or everywhere with
    ``replace_all``), its total recomputed from its terms (docs/diffusion-bound.md#the-bound)."""
    bounds = {}
    scale = math.sqrt(2.0) * cfg.R
    for name, b in record["bounds"].items():
        if replace_all or not math.isfinite(b["score_matching"]):
            total = value + b["encoder_info"] + scale * (b["encoder_prior"] + b["generator"])
            b = {**b, "score_matching": value, "total": total}
        bounds[name] = b
    chosen = bounds[cfg.variant]
    fields = {k: v for k, v in chosen.items() if k != "total"}
    return {**record, **fields, "bounds": bounds, "bound": chosen["total"]}


def bound_against_T(
    score_fn: ScoreFn,
    x_train: torch.Tensor,
    Ts: Sequence[float],
    *,
    x_test: torch.Tensor,
    seed: int = 0,
    data: str = "points",
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> Iterator[dict]:
    """The bound of one trained network at each T of ``Ts``, as a sweep's events: an ``eval`` per T (``run`` =
    T<T>_seed<seed>, ``step`` = ``iters`` = 0: nothing is trained) and then a ``summary`` shaped like a sweep's
    (core.sweep.summarize), so the app's sweep view reads it as one (written as summary.json, ``infogen export``
    and the app's export read it too). ``options`` are
    diffusion_bound's; the test points are needed (the summary compares the bound with the test KL)."""
    from .sweep import SweepRun, summarize

    if x_test is None:
        raise ConfigError("the bound against T is compared with the test KL: give x_test")
    if not len(Ts):
        raise ConfigError("the bound against T needs at least one T")

    finals, runs = {}, []
    for T in Ts:
        if should_stop is not None and should_stop():
            return
        result = diffusion_bound(score_fn, x_train, T, x_test=x_test, seed=seed, **options)
        name = f"T{float(T):g}_seed{seed}"
        record = {**result["terms"], **{k: v for k, v in result.items() if k != "terms"}}
        finals[name] = record
        cfg = DiffusionConfig(data="file", T=float(T), seed=seed, iters=1, variant=options.get("variant", "exact"))
        runs.append(SweepRun(name, cfg, Path(name)))
        yield {"kind": "eval", "run": name, "T": float(T), "step": 0, "iters": 0, **record}
    terms = next(iter(finals.values()))
    base = DiffusionConfig(
        data=data, m=int(terms["m"]), iters=1, R=float(terms["R"]), variant=options.get("variant", "exact"),
        n_steps=int(terms["N"]), mc_samples=int(terms["K"]), n_gen=options.get("n_gen", 1000),
        test_kl_draws=options.get("test_kl_draws", 8),
    )
    summary = summarize(runs, [float(T) for T in Ts], [seed], base, finals, {})
    summary["iters"] = 0  # nothing was trained: one network, evaluated at every T
    yield {"kind": "summary", "summary": summary}
