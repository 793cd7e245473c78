"""The ``infogen`` command line: progress bars on stderr, results on stdout.

infogen train dm --data swissroll --m 200 --T 0.6 --iters 10000 --seed 0 --out RUN_DIR
infogen sweep dm --data swissroll --m 200 --T 0.2:1.8:0.2 --seeds 0,1,2 --iters 10000 --out SWEEP_DIR --json
infogen select-t dm --data swissroll --m 200 --range 0.1:2.0 --out SELECT_DIR --json
infogen train vae --data mnist5k --epochs 100 --m 4000 --out RUN_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from .allocator import keep_freed_memory
from .cost_estimate import estimate_diffusion_time
from . import __version__, kernel_choice
from .bounds.variants import VARIANTS
from .data.toy2d import TOY_DATASETS
from .errors import ConfigError, InfoGenError
from .grids import parse_float_grid, parse_seeds
from .resources import check_writable_folder
from .io.atomic import to_json
from .io.recorder import RunRecorder
from .records import ARRAY_KEYS
from .select_t import select_t
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .sweep import default_jobs, run_sweep
from .training.config import DiffusionConfig
from .training.diffusion import train_diffusion
from .data.images import IMAGE_SOURCES
from .diffusion.unet import UNET_PRESETS
from .training.config import IMAGE_DEFAULTS, image_config, load_run_data_with_shape
from .vae.config import IMAGE_DATASETS, VAEConfig
from .vae.train import train_vae

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130
SHOWN_TERMS = ("score_matching", "encoder_info", "encoder_prior", "generator", "L")
DM_DATASETS = [*sorted(TOY_DATASETS), "file", *IMAGE_SOURCES]


def _add_dm_options(p: argparse.ArgumentParser, sweep: bool, select: bool = False) -> None:
    d = DiffusionConfig()
    train = not (sweep or select)
    if train:
        p.add_argument("model", choices=["dm", "vae"], help="dm: diffusion model (VP-SDE); vae: MLP VAE on images")
        p.add_argument("--data", default=None, choices=DM_DATASETS,
                       help="dataset (default: swissroll for dm, mnist5k for vae)")
    else:
        p.add_argument("model", choices=["dm"], help="dm: diffusion model (VP-SDE)")
        p.add_argument("--data", default=d.data, choices=DM_DATASETS, help="dataset (default %(default)s)")
    p.add_argument("--data-path", default="",
                   help="the user's data: a points file for --data file (.npy, .npz, .csv, .txt); an IDX file (raw "
                   "or .gz) for idx; a CIFAR-10 batch or folder for cifar10; .npy/.npz for image-file; a folder of "
                   "PNG/JPEG for image-folder")
    p.add_argument("--m", type=integer, default=None,
                   help=f"training set size (default {d.m} for points, {IMAGE_DEFAULTS['m']} for images, 4000 for vae)")
    p.add_argument("--n-test", type=integer, default=None,
                   help=f"test set size (default {d.n_test} for points, {IMAGE_DEFAULTS['n_test']} for images)")
    p.add_argument("--preset", default=None,
                   help=f"network size: U-Net {', '.join(UNET_PRESETS)} for image diffusion (default "
                   f"{IMAGE_DEFAULTS['preset']}); paper or small for the VAE (default paper)")
    p.add_argument("--step-size", type=float, default=None, dest="step_size",
                   help=f"fixed EM step, N = round(T / step) (default {IMAGE_DEFAULTS['step_size']} for images; "
                   "points use --N)")
    if select:
        p.add_argument("--range", default="0.1:2.0", dest="t_range", help="T range low:high (default %(default)s)")
        p.add_argument("--coarse", type=integer, default=3, help="coarse trainings before refining (default %(default)s)")
        p.add_argument("--max-trainings", type=integer, default=4, help="training budget (default %(default)s)")
        p.add_argument("--seed", type=integer, default=d.seed, help="seed of data, init and noise (default %(default)s)")
        p.add_argument("--jobs", type=integer, default=None, help="worker processes (default: one per core)")
    elif sweep:
        p.add_argument("--T", default="0.2:1.8:0.2", help="T grid: start:stop:step or a comma list (default %(default)s)")
        p.add_argument("--seeds", default="0,1,2", help="seeds: 0,1,2 or 0-4 (default %(default)s)")
        p.add_argument("--jobs", type=integer, default=None, help="worker processes (default: one per core)")
        p.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local worker processes, or tasks on a Ray cluster (default %(default)s)")
        p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    else:
        p.add_argument("--T", type=float, default=d.T, help="diffusion time (default %(default)s)")
        p.add_argument("--seed", type=integer, default=d.seed, help="seed of data, init and noise (default %(default)s)")
    p.add_argument("--iters", type=integer, default=None,
                   help=f"training iterations (default {d.iters} for points, {IMAGE_DEFAULTS['iters']} for images)")
    p.add_argument("--batch", type=integer, default=None,
                   help=f"minibatch size; >= m means full batch (default {d.batch} for dm, 64 for vae)")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--eval-every", type=integer, default=0 if (sweep or select) else d.eval_every,
                   help="evaluate every k iterations, 0 = only at the end (default %(default)s)")
    p.add_argument("--variant", default=d.variant, choices=sorted(VARIANTS), help="bound variant (default %(default)s)")
    p.add_argument("--R", type=float, default=None,
                   help=f"sub-Gaussian constant of the loss (default {d.R:g} for points, {IMAGE_DEFAULTS['R']:g} for images)")
    p.add_argument("--N", type=integer, default=d.n_steps, dest="n_steps", help="Euler-Maruyama steps (default %(default)s)")
    p.add_argument("--K", type=integer, default=None, dest="mc_samples",
                   help=f"Monte Carlo samples per point (default {d.mc_samples} for points, "
                   f"{IMAGE_DEFAULTS['mc_samples']} for images)")
    p.add_argument("--n-gen", "--eval-samples", type=integer, default=None, dest="n_gen",
                   help=f"generated samples per draw of an evaluation (default {d.n_gen} for points, "
                   f"{IMAGE_DEFAULTS['n_gen']} for images); the evaluation's cost grows with it (printed before the run)")
    p.add_argument("--test-kl-draws", type=integer, default=None, dest="test_kl_draws",
                   help=f"independent draws of --n-gen samples per evaluation; the test KL is their mean and its "
                   f"standard error their spread (default {d.test_kl_draws} for points, "
                   f"{IMAGE_DEFAULTS['test_kl_draws']} for images, whose test metric is BPD)")
    p.add_argument("--full-eval-at-end", action="store_true", dest="preview_evals",
                   help="evaluations before the last are light previews (--preview-samples samples, one draw); the "
                   "last is in full, so the final numbers are unchanged (docs/test-metrics.md#previews)")
    p.add_argument("--preview-samples", type=integer, default=d.preview_samples, dest="preview_samples",
                   help="generated samples of a preview evaluation (default %(default)s)")
    p.add_argument("--score-reg", type=float, default=d.score_reg, dest="score_reg",
                   help="lambda of the score-norm regulariser, DSM + lambda E|s|^2 (default %(default)s: off)")
    p.add_argument("--device", default=d.device, help="torch device, e.g. cpu or cuda (default %(default)s)")
    if train:
        v = VAEConfig()
        vae = p.add_argument_group("VAE options")
        vae.add_argument("--epochs", type=integer, default=v.epochs, help="VAE epochs (default %(default)s)")
        vae.add_argument("--likelihood", default=v.likelihood, choices=["bernoulli", "gaussian"])
        vae.add_argument("--r", type=float, default=v.r, help="r of the encoder+generator bound (default %(default)s)")
        vae.add_argument("--logpx-every", type=integer, default=v.logpx_every, help="importance-sampled log p(x) every k epochs")
        vae.add_argument("--train-stats", default=v.train_stats, choices=["running", "end-pass"])
    p.add_argument("--out", required=True, type=Path, help="output directory")
    if not select:
        p.add_argument("--tensorboard", type=Path, default=None, metavar="DIR",
                       help="also write TensorBoard event files into DIR (a sweep: when it finishes)")
    p.add_argument("--overwrite", action="store_true",
                   help="if --out already holds a run, move it aside (renamed, never deleted) instead of refusing")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit status 2), without the usage block: the
    reason is what the user needs; ``--help`` has the usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def integer(text: str) -> int:
    """An integer argument that also accepts integral scientific notation (1e9, 2.5e3)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="infogen", description="Train generative models and compute their information-theoretic generalization bounds.")
    parser.add_argument("--version", action="version", version=f"infogen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_dm_options(sub.add_parser("train", help="train one model, evaluating the bound and the test gap"), sweep=False)
    _add_dm_options(sub.add_parser("sweep", help="train one model per (T, seed) and aggregate"), sweep=True)
    _add_dm_options(sub.add_parser("select-t", help="find T* by minimizing the bound with few trainings"),
                    sweep=False, select=True)
    info = sub.add_parser("info", help="summarize a checkpoint (exit status 2 and the reason if it is not one)")
    info.add_argument("checkpoint", type=Path)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    export = sub.add_parser("export", help="a figure for a paper (matplotlib), with its CSV and a script")
    export.add_argument("source", type=Path, help="run directory, sweep directory or checkpoint")
    export.add_argument("--figure", choices=["loss", "bound", "gap", "bound-vs-T", "samples"],
                        help="the figure to draw (or --tensorboard instead)")
    export.add_argument("--tensorboard", type=Path, default=None, metavar="DIR",
                        help="write the run (or every run of the sweep, and its summary against T) as TensorBoard "
                        "event files into DIR instead of a figure")
    export.add_argument("--format", default="pdf", choices=["pdf", "svg", "png", "pgf"])
    export.add_argument("--width-in", type=float, default=3.25, help="figure width in inches (default %(default)s)")
    export.add_argument("--dpi", type=float, default=300, help="resolution of PNG output (default %(default)s)")
    export.add_argument("--smoothing", type=float, default=0.9, help="EMA weight of the loss curve (default %(default)s)")
    export.add_argument("--log-y", action="store_true", help="a logarithmic y axis (as the app's log-y)")
    export.add_argument("--terms", default="terms", choices=["total", "terms", "stacked"],
                        help="the bound figure: the bound alone, with its terms, or the terms stacked (default %(default)s)")
    export.add_argument("--out", type=Path, default=None, help="figure path (default: SOURCE-FIGURE.FORMAT here)")
    export.add_argument("--variant", default=None, choices=sorted(VARIANTS),
                        help="bound variant of a sweep's bound-vs-T (default: the sweep's own)")
    export.add_argument("--force", action="store_true",
                        help="overwrite an existing figure, CSV or script (a symbolic link is never followed or "
                        "replaced, even with --force)")
    bound = sub.add_parser("bound", help="the bound and test gap of your own score network (docs/own-models.md)")
    bound.add_argument("--model-module", required=True, metavar="FILE.py:FUNCTION",
                       help="a Python file and the function in it that returns the network, called as net(y, t) "
                       "with y (n, d) and t (n,); the file is run as Python code")
    bound.add_argument("--weights", type=Path, default=None, help="its weights, a safetensors file (never a pickle)")
    bound.add_argument("--output", default="score", choices=["score", "eps", "drift"],
                       help="what the network returns: the score, the predicted noise eps (score = -eps/sigma(t)) or "
                       "the drift a (score = a/sqrt(beta(t))) (default %(default)s)")
    d = DiffusionConfig()
    bound.add_argument("--data", default=d.data, help="dataset, as for train (default %(default)s)")
    bound.add_argument("--data-path", default="", help="the data file or folder of --data file and image sources")
    bound.add_argument("--m", type=integer, default=d.m, help="training points (default %(default)s)")
    bound.add_argument("--n-test", type=integer, default=d.n_test, dest="n_test", help="test points (default %(default)s)")
    bound.add_argument("--seed", type=integer, default=d.seed, help="seed of the data split and the evaluation (default %(default)s)")
    bound.add_argument("--T", type=float, required=True, help="diffusion time")
    bound.add_argument("--variant", default=d.variant, choices=sorted(VARIANTS), help="bound variant (default %(default)s)")
    bound.add_argument("--R", type=float, default=d.R, help="sub-Gaussian constant (default %(default)s)")
    bound.add_argument("--N", type=integer, default=d.n_steps, dest="n_steps", help="Euler-Maruyama steps (default %(default)s)")
    bound.add_argument("--K", type=integer, default=d.mc_samples, dest="mc_samples", help="Monte Carlo samples (default %(default)s)")
    bound.add_argument("--n-gen", "--eval-samples", type=integer, default=d.n_gen, dest="n_gen",
                       help="generated samples per draw (default %(default)s)")
    bound.add_argument("--test-kl-draws", type=integer, default=d.test_kl_draws, dest="test_kl_draws",
                       help="draws of --n-gen samples for the test KL (default %(default)s)")
    bound.add_argument("--device", default="cpu", help="torch device (default %(default)s)")
    bound.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    resume = sub.add_parser("resume", help="continue training from a checkpoint, exactly")
    resume.add_argument("checkpoint", type=Path)
    resume.add_argument("--iters", type=integer, default=None, help="train up to this many iterations (default: the run's)")
    resume.add_argument("--out", type=Path, default=None,
                        help="run folder for the continued run (default: the checkpoint's own run folder, in place)")
    resume.add_argument("--overwrite", action="store_true", help="if --out already holds a run, move it aside first")
    return parser


DATA_DEPENDENT = ("m", "n_test", "iters", "batch", "lr", "R", "mc_samples", "n_gen", "test_kl_draws", "preset", "step_size")


def _config_from(args: argparse.Namespace, **extra) -> DiffusionConfig:
    """The diffusion config: the user's options over the defaults for the data (points or images)."""
    _check_device(args.device)
    data = args.data or DiffusionConfig().data
    base = image_config(data=data) if data in IMAGE_SOURCES else DiffusionConfig(data=data)
    given = {k: getattr(args, k) for k in DATA_DEPENDENT if getattr(args, k, None) is not None}
    if "preset" in given and data not in IMAGE_SOURCES:
        raise ConfigError("--preset chooses the U-Net for image data; point data use the paper's MLP")
    return base.with_(
        data_path=args.data_path, eval_every=args.eval_every, variant=args.variant if args.variant else base.variant,
        n_steps=args.n_steps, device=args.device, score_reg=args.score_reg, preview_evals=args.preview_evals,
        preview_samples=args.preview_samples, **given, **extra,
    ).validate()


ESTIMATE_FROM_S = 10.0  # shorter runs start without a word about their time


def _estimate_text(cfg: DiffusionConfig, runs: int = 1, workers: int = 1) -> str:
    """The expected time of a slow start (core/cost_estimate.py), or "" (short runs, image runs)."""
    estimate = estimate_diffusion_time(cfg, runs, workers)
    if estimate is not None and estimate.total_s >= ESTIMATE_FROM_S:
        return f"estimated time {estimate.describe()}"
    return ""


def _say_estimate(cfg: DiffusionConfig, runs: int = 1, workers: int = 1) -> None:
    text = _estimate_text(cfg, runs, workers)
    if text:
        print(text, file=sys.stderr)


def _check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")


def _interrupted(writer: RunRecorder, bar: tqdm, step: int, out: Path) -> int:
    """Ctrl-C during training: record the cancellation, keep what was written, exit 130."""
    writer.write({"kind": "cancelled", "step": step, "status": "cancelled"})
    bar.close()
    print(f"interrupted; what was written is in {out}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _check_tensorboard(args: argparse.Namespace) -> None:
    """--tensorboard DIR is checked before training: the package is installed and DIR can be written."""
    if getattr(args, "tensorboard", None) is not None:
        from .export.tensorboard import check_target

        check_target(args.tensorboard)


def _tensorboard(args: argparse.Namespace, images: bool):
    """A live TensorBoard writer for --tensorboard DIR, or None."""
    if getattr(args, "tensorboard", None) is None:
        return None
    from .export.tensorboard import TensorBoardRun

    return TensorBoardRun(args.tensorboard, images=images)


def _say_moved(recorder: RunRecorder) -> None:
    if recorder.moved_aside is not None:
        print(f"moved the earlier run in {recorder.folder} aside to {recorder.moved_aside}", file=sys.stderr)


def cmd_train_vae(args: argparse.Namespace) -> int:
    _check_device(args.device)
    data = args.data or "mnist5k"
    if data not in IMAGE_DATASETS:
        raise ConfigError(f"the VAE trains on {' or '.join(IMAGE_DATASETS)}; got --data {data}")
    v = VAEConfig()
    cfg = VAEConfig(data=data, data_path=args.data_path, m=args.m if args.m is not None else (4000 if data == "mnist5k" else None),
                    n_test=args.n_test or v.n_test, epochs=args.epochs, batch=args.batch or 64, lr=args.lr or v.lr,
                    seed=args.seed, preset=args.preset or v.preset, likelihood=args.likelihood, r=args.r, logpx_every=args.logpx_every,
                    train_stats=args.train_stats, device=args.device).validate()
    last, error = None, None
    _check_tensorboard(args)
    board = None
    with RunRecorder(args.out, cfg.as_dict(), model="vae", overwrite=args.overwrite) as writer:
        _say_moved(writer)
        board = _tensorboard(args, images=True)
        bar = tqdm(total=cfg.epochs, desc=f"train vae {cfg.data}", unit="epoch", file=sys.stderr, mininterval=0.5)
        try:
            for record in train_vae(cfg):
                writer.write(record)
                if board is not None:
                    board.write(record)
                if record["kind"] == "epoch":
                    last = record
                    bar.update(1)
                    bar.write(f"epoch {record['epoch']}: rec {record['rec_train']:.2f} kl {record['kl_train']:.2f} "
                              f"mi {record['mi_train']:.2f} | bounds {record['bound_encoder_only']:.2f} / "
                              f"{record['bound_encoder_generator']:.2f} | test curve {record['test_curve']:.2f}", file=sys.stderr)
                elif record["kind"] == "error":
                    error = record["message"]
        except KeyboardInterrupt:
            return _interrupted(writer, bar, last["step"] if last else 0, args.out)
        finally:
            if board is not None:
                board.close()
    bar.close()
    if error:
        print(f"error: {error}", file=sys.stderr)
    if last is not None:
        print(json.dumps(to_json({**{k: v for k, v in last.items() if k not in ARRAY_KEYS}, "run_dir": str(args.out)})) if args.json else
              f"epoch {last['epoch']}: encoder-only bound {last['bound_encoder_only']:.3f}, encoder+generator bound "
              f"{last['bound_encoder_generator']:.3f} (r={last['r']:g}), test curve {last['test_curve']:.3f} nats")
    return EXIT_RUN_FAILED if error else 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.model == "vae":
        return cmd_train_vae(args)
    cfg = _config_from(args, T=args.T, seed=args.seed)
    final, error = None, None
    _check_tensorboard(args)
    board = None
    with RunRecorder(args.out, cfg.as_dict(), overwrite=args.overwrite) as writer:
        _say_moved(writer)
        _say_estimate(cfg)
        board = _tensorboard(args, images=cfg.is_images)
        bar = tqdm(total=cfg.iters, desc=f"train T={cfg.T:g}", unit="it", file=sys.stderr, mininterval=0.5)
        try:
            for record in train_diffusion(cfg):
                writer.write(record)
                if board is not None:
                    board.write(record)
                if record["kind"] == "step":
                    bar.update(record["step"] - bar.n)
                    bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)
                elif record["kind"] == "eval":
                    final = record
                    bar.write(f"step {record['step']}: bound {record['bound']:.4f}  {_test_metric(record)}", file=sys.stderr)
                elif record["kind"] == "error":
                    error = record["message"]
        except KeyboardInterrupt:
            return _interrupted(writer, bar, bar.n, args.out)
        finally:
            if board is not None:
                board.close()
    bar.close()
    if error:
        print(f"error: {error}", file=sys.stderr)
    if final is not None:
        result = {k: v for k, v in final.items() if k not in ARRAY_KEYS}
        result["run_dir"] = str(args.out)
        if args.json:
            print(json.dumps(to_json(result)))
        else:
            _print_run_table(result)
    return EXIT_RUN_FAILED if error else 0


def _print_run_table(r: dict) -> None:
    print(f"run {r['run_dir']}  T={r['T']:g}  m={r['m']}  step {r['step']}  variant {r['variant']}  R={r['R']:g}  N={r['N']}  K={r['K']}")
    print(f"  bound          {r['bound']:.4f}")
    for term in SHOWN_TERMS:
        print(f"  {term:<14} {r[term]:.4f}")
    print(f"  sum_beta       {r['sum_beta']:.2f}")
    print(f"  test_kl        {r['test_kl']:.4f} ± {_se(r.get('test_kl_se'))}  ({r.get('test_kl_draws', 1)} draws)")
    if "test_bpd" in r:
        print(f"  test_bpd       {r['test_bpd']:.4f} ± {r['test_bpd_se']:.4f}")
    print(f"  dsm_gap        {r['dsm_gap']:.4f}  (held-out {r['dsm_test']:.4f} - train {r['dsm_train']:.4f})")
    print(f"  nn_dist_mean   {r['nn_dist_mean']:.4f}  (train spacing {r['train_nn_median']:.4f})")


def cmd_sweep(args: argparse.Namespace) -> int:
    Ts = parse_float_grid(args.T)
    seeds = parse_seeds(args.seeds)
    base = _config_from(args)
    jobs = args.jobs if args.jobs is not None else min(default_jobs(), len(Ts) * len(seeds))
    _check_tensorboard(args)
    estimate = _estimate_text(base, len(Ts) * len(seeds), jobs)  # measured before the workers load the cores
    # delay: nothing is drawn when the sweep is refused at once (an occupied --out), only its one-line reason.
    bar = tqdm(total=base.iters, desc=f"sweep {len(Ts) * len(seeds)} runs on {jobs} worker(s)", unit="it",
               file=sys.stderr, mininterval=0.5, delay=1.0)
    summary = None
    errors = []
    steps: dict[str, int] = {}
    failed: set[str] = set()
    said_estimate = False
    try:
        for event in run_sweep(base, Ts, seeds, args.out, jobs=jobs, engine=args.engine, address=args.address,
                               overwrite=args.overwrite):
            kind = event["kind"]
            if not said_estimate:  # the first event: the folder was accepted and the workers are starting
                said_estimate = True
                if estimate:
                    print(estimate, file=sys.stderr)
            if kind == "progress":
                for name in event["runs"]:
                    if name not in failed:
                        steps[name] = event["step"]
                if steps:
                    bar.update(max(0, min(steps.values()) - bar.n))
                evaluating = event.get("evaluating")
                bar.set_postfix_str(f"evaluating at step {event['step']} (sampling can take minutes)" if evaluating else "")
            elif kind == "eval" and event["step"] == event["iters"]:
                bar.write(f"{event['run']}: bound {event['bound']:.4f}  {_test_metric(event)}", file=sys.stderr)
            elif kind == "error":
                errors.append(f"{event['run']}: {event['message']}")
                bar.write(f"error in {errors[-1]}", file=sys.stderr)
                failed.add(event["run"])
                steps.pop(event["run"], None)  # a failed run no longer holds the bar back
            elif kind == "summary":
                summary = event["summary"]
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted; finished runs are in {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    bar.update(base.iters - bar.n)
    bar.close()
    if args.tensorboard is not None:
        from .export.tensorboard import export_sweep

        export_sweep(args.out, args.tensorboard)
        print(f"tensorboard: {args.tensorboard}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(summary)))
    else:
        _print_sweep_table(summary)
    return EXIT_RUN_FAILED if errors else 0


def _se(value: float | None) -> str:
    """A standard error for a table: 'n/a' where there is none (a single draw)."""
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _test_metric(record: dict) -> str:
    if "test_bpd" in record:
        return f"test BPD {record['test_bpd']:.4f} ± {_se(record.get('test_bpd_se'))}  test KL {record['test_kl']:.4g}"
    return f"test KL {record['test_kl']:.4f} ± {_se(record.get('test_kl_se'))}"


def _print_sweep_table(s: dict) -> None:
    preset = f" preset={s['preset']}" if "preset" in s else ""
    print(f"sweep: {s['data']} m={s['m']} iters={s['iters']} seeds={s['seeds']} variant={s['variant']} R={s['R']:g}{preset}")
    bpd = "bpd_mean" in s
    print("bound and test metrics: mean ± sd over seeds; se: Monte Carlo standard error of the test metric's seed mean")
    print(f"{'T':>5} {'bound':>20} {'test KL':>18} {'se':>7}" + (f" {'test BPD':>15} {'se':>7}" if bpd else "")
          + f" {'sm':>8} {'enc_info':>9} {'enc_prior':>9} {'generator':>9} {'L':>8}")
    tm = s["terms_mean"]
    for i, T in enumerate(s["T"]):
        line = (f"{T:5.2f} {s['bound_mean'][i]:10.4g}±{s['bound_std'][i]:<9.3g} {s['test_kl_mean'][i]:8.4g}±"
                f"{s['test_kl_std'][i]:<9.3g} {_se(s['test_kl_se'][i]):>7}")
        if bpd:
            line += f" {s['bpd_mean'][i]:7.4f}±{s['bpd_std'][i]:<7.4f} {_se(s['bpd_se'][i]):>7}"
        print(line + f" {tm['score_matching'][i]:8.4f} {tm['encoder_info'][i]:9.4f} {tm['encoder_prior'][i]:9.4f}"
              f" {tm['generator'][i]:9.4f} {s['L_mean'][i]:8.3f}")
    print(f"T* by bound: {s['T_star_bound']}")
    print(f"T* by test KL: {s['T_star_test_kl']}; within 2 SE of it: {_grid(s['T_near_best_test_kl'])}")
    if bpd:
        print(f"T* by test BPD: {s['T_star_bpd']}; within 2 SE of it: {_grid(s['T_near_best_bpd'])}")


def _grid(Ts: list[float]) -> str:
    return ", ".join(f"{T:g}" for T in Ts) if Ts else "none"


def cmd_select_t(args: argparse.Namespace) -> int:
    try:
        lo, hi = (float(v) for v in args.t_range.split(":"))
    except ValueError:
        raise ConfigError(f"--range must be low:high, got {args.t_range!r}") from None
    base = _config_from(args, seed=args.seed, T=lo)
    selection = None
    for event in select_t(base, (lo, hi), args.out, args.coarse, args.max_trainings, args.jobs,
                          overwrite=args.overwrite):
        if event["kind"] == "evaluated":
            print(f"trained T={event['T']:g}: bound {event['bound']:.4f}, test KL {event['test_kl']:.4f} "
                  f"({event['trainings']} training(s) so far)", file=sys.stderr)
        elif event["kind"] == "error":
            print(f"error in {event['run']}: {event['message']}", file=sys.stderr)
        elif event["kind"] == "selection":
            selection = event["selection"]
    if args.json:
        print(json.dumps(to_json(selection)))
    else:
        print(f"T* = {selection['T_star']:g}  bound {selection['bound_at_T_star']:.4f} (variant {selection['variant']}, "
              f"R={selection['R']:g}, {selection['iters']} iterations)")
        print(f"trainings: {selection['trainings']}; evaluated [T, bound]: "
              + ", ".join(f"[{T:g}, {b:.3f}]" for T, b in selection["evaluated"]))
        print(f"final model: {selection['final_run_dir']}")
    return 0


def _value(value, spec: str = ".4f") -> str:
    """A number for a table, or 'n/a' where there is none (null in the file: a NaN, or never computed)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return "n/a"
    return format(value, spec)


def cmd_bound(args: argparse.Namespace) -> int:
    """The bound of a user's own network on a dataset's training split, and its test gap on the test split."""
    from .api import diffusion_bound
    from .user_model import load_user_network

    _check_device(args.device)
    cfg = DiffusionConfig(data=args.data, data_path=args.data_path, m=args.m, n_test=args.n_test, seed=args.seed)
    if cfg.is_images:
        raise ConfigError("infogen bound takes point data (a dataset of points or --data file); for images use "
                          "core.api.diffusion_bound from Python on the space your network models")
    x_train, x_test, _ = load_run_data_with_shape(cfg.validate())
    net = load_user_network(args.model_module, args.weights, args.device)
    device = torch.device(args.device)
    result = diffusion_bound(
        net, torch.from_numpy(x_train).to(device), args.T, x_test=torch.from_numpy(x_test).to(device),
        output=args.output, variant=args.variant, R=args.R, N=args.n_steps, K=args.mc_samples, n_gen=args.n_gen,
        test_kl_draws=args.test_kl_draws, seed=args.seed,
    )
    shown = {k: v for k, v in result.items() if k != "samples"}
    if args.json:
        print(json.dumps(to_json(shown)))
        return 0
    t = result["terms"]
    print(f"{args.model_module}  T={args.T:g}  m={t['m']}  variant {result['variant']}  R={t['R']:g}  N={t['N']}  K={t['K']}")
    print(f"  bound          {result['bound']:.4f}")
    for term in SHOWN_TERMS:
        print(f"  {term:<14} {t[term]:.4f}")
    print(f"  test_kl        {result['test_kl']:.4f} ± {_se(result.get('test_kl_se'))}  ({result['test_kl_draws']} draws)")
    print(f"  dsm_gap        {result['dsm_gap']:.4f}  (held-out {result['dsm_test']:.4f} - train {result['dsm_train']:.4f})")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    vae = ckpt.model == "vae"
    evals = ckpt.records("epoch" if vae else "eval")
    last = evals[-1] if evals else None
    shown = (("epoch", "step", "bound_encoder_only", "bound_encoder_generator", "test_curve") if vae
             else ("step", "bound", "test_kl", "variant", "R", "L"))
    info = {
        "format_version": ckpt.doc["format_version"], "package_version": ckpt.doc.get("package_version"),
        "model": ckpt.model, "config": ckpt.config, "provenance": ckpt.doc.get("provenance"),
        "history_length": len(ckpt.history), "step": ckpt.step, "evaluations": len(evals),
        "resumable": ckpt.train_state is not None,
        "last_eval": {k: last.get(k) for k in shown} if last else None,
        "notes": list(ckpt.notes),
    }
    if args.json:
        print(json.dumps(to_json(info)))
        return 0
    cfg = ckpt.config
    print(f"{args.checkpoint}: InfoGen checkpoint, format {info['format_version']} (package {info['package_version']})")
    if vae:
        print(f"  model vae: {cfg.get('data')} m={cfg.get('m')} epochs={cfg.get('epochs')} seed={cfg.get('seed')} "
              f"preset={cfg.get('preset')} likelihood={cfg.get('likelihood')}")
    else:
        print(f"  model {info['model']}: {cfg.get('data')} m={cfg.get('m')} T={cfg.get('T')} seed={cfg.get('seed')} "
              f"iters={cfg.get('iters')} variant={cfg.get('variant')} R={cfg.get('R')}")
    print(f"  at step {info['step']} with {info['evaluations']} evaluation(s), {info['history_length']} records; "
          f"{'resumable' if info['resumable'] else 'not resumable'}")
    if last and vae:
        print(f"  last epoch {last.get('epoch')}: bounds {_value(last.get('bound_encoder_only'))} (encoder only) / "
              f"{_value(last.get('bound_encoder_generator'))} (encoder+generator), test curve {_value(last.get('test_curve'))}")
    elif last:
        print(f"  last evaluation at step {last['step']}: bound {_value(last.get('bound'))}, "
              f"test KL {_value(last.get('test_kl'))}")
    for note in ckpt.notes:
        print(f"  note: {note}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export.figures import export_figure

    if args.tensorboard is not None:
        return _export_tensorboard(args.source, args.tensorboard)
    if args.figure is None:
        raise ConfigError("infogen export needs --figure FIGURE or --tensorboard DIR")

    paths = export_figure(args.source, args.figure, args.format, args.width_in, args.dpi, args.out, args.smoothing,
                          args.variant, force=args.force, log_y=args.log_y, terms=args.terms)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _export_tensorboard(source: Path, out: Path) -> int:
    from .export.tensorboard import export_run, export_sweep

    if (source / "summary.json").is_file():
        count = export_sweep(source, out)
        print(f"tensorboard: {out} ({count} runs and the summary against T)")
    elif source.is_dir():
        count = export_run(source, out)
        print(f"tensorboard: {out} ({count} records)")
    else:
        raise ConfigError(f"--tensorboard exports a run or sweep folder; {source} is neither")
    return 0


def resume_target(checkpoint: Path, out: Path | None) -> tuple[Path, bool]:
    """Where a resumed run is written, and whether that is the checkpoint's own run folder (in place)."""
    own = checkpoint.name == CHECKPOINT_NAME and (checkpoint.parent / "config.json").is_file()
    if out is not None:
        return out, own and out.resolve() == checkpoint.parent.resolve()
    if not own:
        raise ConfigError(f"{checkpoint} is not the checkpoint of a run folder; pass --out FOLDER for the continued run")
    return checkpoint.parent, True


def cmd_resume(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.train_state is None:
        raise ConfigError(f"{args.checkpoint}: holds no training state to resume from")
    values = ckpt.resume_config()  # the saved device if this machine has it, else the CPU
    if args.iters is not None:
        values["iters"] = args.iters
    cfg = DiffusionConfig.from_dict(values).validate()
    if cfg.iters <= ckpt.step:
        raise ConfigError(f"the checkpoint is at step {ckpt.step}; pass --iters above it to train further")
    train_state = ckpt.train_state_for(cfg.device)
    for note in ckpt.notes:
        print(f"note: {note}", file=sys.stderr)
    folder, in_place = resume_target(Path(args.checkpoint), args.out)
    final, error = None, None
    with RunRecorder(folder, cfg.as_dict(), resume=ckpt, in_place=in_place, overwrite=args.overwrite) as writer:
        _say_moved(writer)
        bar = tqdm(total=cfg.iters, initial=ckpt.step, desc=f"resume T={cfg.T:g}", unit="it", file=sys.stderr,
                   mininterval=0.5)
        try:
            with kernel_choice.taking(ckpt.kernel_paths):  # the paths the run trained with: an exact continuation
                for record in train_diffusion(cfg, resume=train_state):
                    writer.write(record)
                    if record["kind"] == "step":
                        bar.update(record["step"] - bar.n)
                    elif record["kind"] == "eval":
                        final = record
                    elif record["kind"] == "error":
                        error = record["message"]
        except KeyboardInterrupt:
            return _interrupted(writer, bar, bar.n, folder)
    bar.close()
    if error:
        print(f"error: {error}", file=sys.stderr)
    if final is not None:
        print(f"resumed to step {final['step']}: bound {final['bound']:.4f}, test KL {final['test_kl']:.4f}; "
              f"run folder {folder}")
    return EXIT_RUN_FAILED if error else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad argument (one line already printed), --help or --version
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        commands = {"train": cmd_train, "sweep": cmd_sweep, "select-t": cmd_select_t, "info": cmd_info,
                    "resume": cmd_resume, "export": cmd_export, "bound": cmd_bound}
        if args.command in ("train", "sweep", "select-t", "resume"):
            kernel_choice.environment_path()  # a bad INFOGEN_KERNELS is named before any work
        if args.command in ("train", "sweep", "select-t"):
            check_writable_folder(args.out)  # a message, not a traceback, before any work
        if args.command in ("train", "sweep", "select-t", "resume"):
            keep_freed_memory()
        return commands[args.command](args)
    except InfoGenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
