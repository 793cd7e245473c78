"""Apply, one at a time, the careless edits that once went unnoticed, and check that the tests now catch each one.

Each error is a single text replacement in one file of core/. For each, the tree is copied to a temporary
folder, the edit is applied there, and the fast core tests run against that copy (`python -m pytest` from the
copy, so its `core` package is the one imported). The script prints one line per error and exits non-zero if
any error survives. It is a check for maintainers, not part of CI: about a minute per error on 2 cores.

    .venv/bin/python scripts/seeded_errors.py            # all of them
    .venv/bin/python scripts/seeded_errors.py --list     # just the list
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (what, file, original text, erroneous text)
ERRORS = [
    ("generator term without its square root", "core/bounds/diffusion_bound.py",
     "return math.sqrt(T * L * L * sum_beta / (2.0 * m * n_steps))", "return T * L * L * sum_beta / (2.0 * m * n_steps)"),
    ("generator term without the factor 2", "core/bounds/diffusion_bound.py",
     "(2.0 * m * n_steps))", "(m * n_steps))"),
    ("generator term with L instead of L^2", "core/bounds/diffusion_bound.py",
     "T * L * L * sum_beta", "T * L * sum_beta"),
    ("generator term without N", "core/bounds/diffusion_bound.py",
     "(2.0 * m * n_steps))", "(2.0 * m))"),
    ("exact sum of beta with N + 1 terms", "core/bounds/diffusion_bound.py",
     "n_terms = n_steps + 1 if variant.sum_beta_extra_term else n_steps", "n_terms = n_steps + 1"),
    ("encoder_prior without the square root", "core/bounds/diffusion_bound.py",
     "prior = float(kl_prior.sqrt().mean()) if", "prior = float(kl_prior.mean()) if"),
    ("encoder_prior with sigma instead of sigma^2", "core/bounds/diffusion_bound.py",
     "kl_prior = kl_isotropic_to_standard(means, var)", "kl_prior = kl_isotropic_to_standard(means, math.sqrt(var))"),
    ("encoder_prior as sqrt(mean KL)", "core/bounds/diffusion_bound.py",
     "prior = float(kl_prior.sqrt().mean()) if", "prior = float(kl_prior.mean().sqrt()) if"),
    ("encoder_info with sigma instead of sigma^2 in exact", "core/bounds/diffusion_bound.py",
     'enc_var = var if variant.encoder_variance == "var" else math.sqrt(var)', "enc_var = math.sqrt(var)"),
    ("encoder means alpha^2 x instead of alpha x", "core/bounds/diffusion_bound.py",
     "means = alpha * x.reshape(m, -1)", "means = alpha * alpha * x.reshape(m, -1)"),
    ("VAE bound: first (1 + r) factor dropped", "core/vae/train.py",
     "rec + (1 + r) * math.sqrt(max(kl, 0.0))", "rec + math.sqrt(max(kl, 0.0))"),
    ("VAE bound: second (1 + r) factor dropped", "core/vae/train.py",
     "+ (1 + r) * math.sqrt(max(mi, 0.0) / m)", "+ math.sqrt(max(mi, 0.0) / m)"),
    ("VAE bound: mi / m without the root", "core/vae/train.py",
     "(1 + r) * math.sqrt(max(mi, 0.0) / m)", "(1 + r) * (max(mi, 0.0) / m)"),
    ("VAE bound: m dropped", "core/vae/train.py",
     "(1 + r) * math.sqrt(max(mi, 0.0) / m)", "(1 + r) * math.sqrt(max(mi, 0.0))"),
    ("VAE: sign of mi flipped", "core/vae/model.py",
     '"mi": log_p.detach() - log_p0', '"mi": log_p0 - log_p.detach()'),
    ("score = a / beta instead of a / sqrt(beta)", "core/diffusion/score_mlp.py",
     "return drift / torch.sqrt(sde.beta(t)).unsqueeze(-1)", "return drift / sde.beta(t).unsqueeze(-1)"),
    ("L as the mean over steps instead of the max", "core/diffusion/sampler.py",
     "return self.mean_score_norm.max(dim=1).values", "return self.mean_score_norm.mean(dim=1)"),
    ("Euler-Maruyama steps taken at the reverse clock", "core/diffusion/sampler.py",
     "        t_k = T - s_k\n", "        t_k = s_k\n"),
    ("minibatching switched off", "core/training/diffusion.py",
     "if batch >= m:", "if True:"),
    ("checkpoint written in place instead of renamed over", "core/io/atomic.py",
     'fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)',
     'fd, tmp = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), str(target)'),
]

TEST_FILES = [
    "tests/core/test_bound_terms_closed_form.py", "tests/core/test_sampler_and_score_closed_form.py",
    "tests/core/test_vae_bounds_closed_form.py", "tests/core/test_test_metrics_closed_form.py",
    "tests/core/test_checkpoint.py", "tests/core/test_training.py", "tests/core/test_vae.py",
]


def copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv", "mutants", "__pycache__", "*.egg-info", ".pytest_cache")
    shutil.copytree(ROOT, dest, ignore=ignore)


def run_tests(tree: Path) -> tuple[bool, str]:
    """True when a test FAILS against ``tree`` (an import or collection error does not count: it would show
    that the edit broke the code, not that a test checks the formula); the first failing test's id."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *TEST_FILES]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAILED")]
    errors = [line for line in lines if line.startswith("ERROR")]
    if errors:
        return False, f"collection or setup error, not a failing test: {errors[0]}"
    return bool(failed), (failed[0].split(" ")[1] if failed else (lines[-1] if lines else "no output"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the errors and exit")
    args = parser.parse_args(argv)
    if args.list:
        for what, path, _, _ in ERRORS:
            print(f"{path}: {what}")
        return 0
    survivors = 0
    with tempfile.TemporaryDirectory(prefix="infogen-errors-") as tmp:
        base = Path(tmp) / "tree"
        copy_tree(base)
        dirty, detail = run_tests(base)
        if dirty or "passed" not in detail:
            print(f"the unmodified tree does not pass ({detail}); fix that first")
            return 2
        for what, rel, old, new in ERRORS:
            target = base / rel
            original = target.read_text()
            if original.count(old) != 1:
                print(f"SKIPPED  {what}: the text to change is not found once in {rel} (update this script)")
                survivors += 1
                continue
            target.write_text(original.replace(old, new))
            start = time.perf_counter()
            caught, detail = run_tests(base)
            target.write_text(original)
            print(f"{'caught ' if caught else 'MISSED '} {what} ({time.perf_counter() - start:.0f} s): {detail}", flush=True)
            survivors += not caught
    print(f"{len(ERRORS) - survivors} of {len(ERRORS)} errors caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
