"""Random draws come from the generators' device (the CPU here) and go to the data's device. The "meta" device
stands in for an accelerator: a draw left on the CPU would meet meta tensors and raise."""

import torch

from core.bounds.mixture_kl import log_mixture_density
from core.diffusion.dsm import dsm_eval, dsm_terms
from core.diffusion.elbo import elbo
from core.diffusion.sampler import euler_maruyama
from core.sde import VPSDE
from core.vae.model import VAE

META = torch.device("meta")


class StationaryScore:
    def score(self, y, t, sde, t_net=None):
        return -y


class LinearDrift(torch.nn.Module):
    def forward(self, y, t):
        return -y


def gens():
    return [torch.Generator().manual_seed(0)]


def test_dsm_runs_on_the_data_device():
    x, T = torch.zeros(1, 6, 2, device=META), torch.tensor([0.5], device=META)
    losses, norms = dsm_terms(StationaryScore(), VPSDE(), x, T, gens())
    assert losses.device == norms.device == META and losses.shape == (1, 6)
    total = dsm_eval(StationaryScore(), VPSDE(), x, T, gens(), draws=2, chunk=4)
    assert total.device == META and total.shape == (1,)


def test_elbo_runs_on_the_data_device():
    y, T = torch.zeros(1, 6, 2, device=META), torch.tensor([0.5], device=META)
    out = elbo(LinearDrift(), VPSDE(), y, T, gens(), chunk=4)
    assert out.device == META and out.shape == (1, 6)


def test_vae_estimates_run_on_the_data_device():
    model = VAE(4, (3,), 2).to(META)
    x = torch.zeros(5, 4, device=META)
    terms = model.terms(x, gens()[0])
    assert all(v.device == META and v.shape == (5,) for v in terms.values())
    log_px = model.log_px(x, 3, gens()[0], chunk=2)
    assert log_px.device == META and log_px.shape == (5,)


def test_log_mixture_density_stays_on_the_points_device():
    out = log_mixture_density(torch.zeros(4, 2, device=META), torch.zeros(7, 2, device=META), 0.5, block_bytes=64)
    assert out.device == META and out.shape == (4,)


def test_sampler_runs_on_the_data_device():
    y0, T = torch.zeros(2, 5, 2, device=META), torch.tensor([1.0, 0.5], device=META)
    result = euler_maruyama(StationaryScore(), VPSDE(), y0, T, 4, gens() + gens(), frame_every=2)
    assert result.samples.device == result.mean_score_norm.device == META
    assert result.mean_score_norm.shape == (2, 4) and [f.shape for f in result.frames] == [(3, 5, 2)] * 2
