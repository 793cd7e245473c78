"""encoder_info at image scale: time, peak memory and achieved GFLOP/s against torch's own matmul.

Default: m = 10,000 points in d = 784 (MNIST-sized), K = 100 samples each, mixture over all m: the distance
matrix product alone is 2 m K m d = 1.57e13 flops. Peak memory is the process's peak RSS growth.

    python benchmarks/bench_encoder_info.py [--m 10000] [--d 784] [--K 100] [--threads N]
    python benchmarks/bench_encoder_info.py --data mnist5k [--T 0.8]

With --data mnist5k it is the exact bound's encoder_info on the real mnist5k training set (4,000 images,
dequantised and logit-transformed as for diffusion, means alpha(T) x, variance sigma^2(T), mixture over all m).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from core.bounds.mixture_kl import mixture_kl


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_gflops(d: int, seconds: float = 3.0) -> float:
    """torch's own float32 GEMM rate on blocks shaped like ours."""
    a, b = torch.randn(4096, d), torch.randn(d, 4096)
    torch.mm(a, b)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * 4096 * 4096 * d * n / (time.perf_counter() - t0) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, default=10_000)
    p.add_argument("--d", type=int, default=784)
    p.add_argument("--K", type=int, default=100)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--data", choices=["synthetic", "mnist5k"], default="synthetic")
    p.add_argument("--T", type=float, default=0.8, help="diffusion time for --data mnist5k")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    var = 0.8
    if args.data == "mnist5k":
        from core.sde import VPSDE
        from core.training.config import image_config, load_run_data
        from core.training.diffusion import to_logit_space

        train = torch.from_numpy(load_run_data(image_config(data="mnist5k", m=4000, n_test=1000))[0])
        x = to_logit_space(train[None], [gen])[0]
        sde = VPSDE()
        means, var = float(sde.alpha(args.T)) * x, float(sde.var(args.T))
        args.m, args.d = means.shape
        print(f"mnist5k training set, T={args.T}: alpha {float(sde.alpha(args.T)):.4f}, sigma^2 {var:.4f}")
    else:
        means = 0.3 * torch.rand(args.m, args.d, generator=gen)
    data_mib = means.numel() * 4 / 2**20
    before = peak_rss_mib()
    t0 = time.perf_counter()
    result = mixture_kl(means, means, var, var, args.K, gen)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mib() - before
    flops = 2.0 * args.m * args.K * args.m * args.d
    ours = flops / seconds / 1e9
    ref = matmul_gflops(args.d)
    print(f"encoder_info: m={args.m} d={args.d} K={args.K} threads={args.threads}")
    print(f"  value {-result.mean:.5f} +- {result.mean_se:.5f}")
    print(f"  time {seconds:.1f} s, peak memory growth {peak:.0f} MiB (means alone {data_mib:.0f} MiB)")
    print(f"  achieved {ours:.1f} GFLOP/s vs torch.mm {ref:.1f} GFLOP/s: {ours / ref:.2f} of peak")


if __name__ == "__main__":
    main()
