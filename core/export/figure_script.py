"""The standalone script written next to every exported figure; export draws the figure with this same code,
compiled from the text it writes (core.export.figures.render_script), never by running a file from disk.

Keep it self-contained: it may import only the standard library, numpy and matplotlib, because users run it
on its own to restyle a figure for their paper.
"""

SCRIPT = r'''#!/usr/bin/env python3
"""Redraw an InfoGen Explorer figure from its CSV.  Usage: python THIS.py [OUT] [--width-in W] [--dpi D]"""
import argparse
import csv
import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FIGURE = {figure!r}
CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), {csv_name!r})
DEFAULT_OUT = {out_name!r}
META = {meta!r}


def read_csv(path):
    with open(path, newline="") as fh:
        return parse_csv(fh)


def parse_csv(fh):
    rows = list(csv.DictReader(fh))
    columns = {{}}
    for key in rows[0].keys() if rows else []:
        values = []
        for row in rows:
            cell = row[key]
            values.append(float(cell) if cell not in ("", "nan", "None") else np.nan)
        columns[key] = np.array(values)
    return columns


def style(width_in):
    plt.rcParams.update({{
        "figure.figsize": (width_in, width_in * 0.72), "font.size": 8, "axes.labelsize": 8, "legend.fontsize": 6.5,
        "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.2, "axes.spines.top": False,
        "axes.spines.right": False, "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "path",
    }})


def draw(c, ax):
    layout = META.get("layout", FIGURE)
    if layout == "vae-bound":
        ax.plot(c["epoch"], c["bound_encoder_only"], "-", color="C0", label="encoder-only bound")
        ax.plot(c["epoch"], c["bound_encoder_generator"], "-", color="C2", label="encoder + generator bound")
        ax.plot(c["epoch"], c["test_curve"], "s-", color="C3", ms=2, label="test curve")
        ax.plot(c["epoch"], c["train_neg_elbo"], ":", color="0.4", label="train −ELBO")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats")
    elif layout == "image-grid":
        channels, height, width = META["shape"]
        n = int(c["image"].max()) + 1
        images = c["value"].reshape(n, channels, height, width).transpose(0, 2, 3, 1)
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
        grid = np.ones((rows * (height + 1) - 1, cols * (width + 1) - 1, channels))
        for i in range(n):
            r, k = divmod(i, cols)
            grid[r * (height + 1):r * (height + 1) + height, k * (width + 1):k * (width + 1) + width] = images[i]
        ax.imshow(grid[..., 0] if channels == 1 else grid, cmap="gray" if channels == 1 else None, vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_axis_off()
        return
    elif FIGURE == "loss":
        ax.plot(c["step"], c["loss"], color="0.75", lw=0.6, label="train (raw)")
        ax.plot(c["step"], c["loss_smoothed"], color="C0", label="train (smoothed)")
        held = ~np.isnan(c["held_out"])
        ax.plot(c["step"][held], c["held_out"][held], "o", color="C3", ms=3, label="held-out")
        ax.set_xlabel("iteration")
        ax.set_ylabel(META.get("ylabel", "DSM loss"))
    elif FIGURE == "bound":
        ax.plot(c["step"], c["bound"], "o-", color="k", ms=3, label="bound (R={{:g}})".format(META["R"]))
        for name, colour in (("score_matching", "C0"), ("encoder_info", "C1"), ("encoder_prior_scaled", "C2"),
                             ("generator_scaled", "C3")):
            if name not in c:  # the bound alone ("total")
                continue
            label = name.replace("_scaled", "").replace("_", " ")
            label = "√2R·" + label if name.endswith("_scaled") else label
            label = "+ " + label if META.get("stacked") else label
            ax.plot(c["step"], c[name], "--", color=colour, label=label)
        ax.set_xlabel("iteration")
        ax.set_ylabel("nats")
    elif FIGURE == "gap":
        ax.plot(c["step"], c["test_kl"], "s-", color="C3", ms=3, label="test KL")
        ax.plot(c["step"], c["dsm_gap"], "--", color="C0", label="held-out − train DSM")
        ax.set_xlabel("iteration")
        ax.set_ylabel("nats")
    elif FIGURE == "bound-vs-T":
        T = c["T"]
        ax.fill_between(T, c["bound_mean"] - c["bound_std"], c["bound_mean"] + c["bound_std"], color="C0", alpha=0.2, lw=0)
        ax.plot(T, c["bound_mean"], "o-", color="C0", ms=3, label="bound (R={{:g}})".format(META["R"]))
        ax.set_xlabel("diffusion time T")
        ax.set_ylabel("bound", color="C0")
        twin = ax.twinx()
        twin.fill_between(T, c["test_mean"] - c["test_std"], c["test_mean"] + c["test_std"], color="C3", alpha=0.2, lw=0)
        twin.plot(T, c["test_mean"], "s-", color="C3", ms=3, label=META.get("test_label", "test KL"))
        twin.set_ylabel(META.get("test_label", "test KL"), color="C3")
        twin.spines["right"].set_visible(True)
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], frameon=False)
        return
    elif FIGURE == "samples":
        train = c["kind"] == 0
        ax.scatter(c["x"][train], c["y"][train], s=2, color="0.6", label="training points")
        ax.scatter(c["x"][~train], c["y"][~train], s=2, color="C3", label="generated")
        ax.set_aspect("equal")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    ax.legend(frameon=False)


def render(out=None, width_in={width_in!r}, dpi={dpi!r}, columns=None):
    out = out or os.path.join(os.path.dirname(os.path.abspath(__file__)), DEFAULT_OUT)
    style(width_in)
    fig, ax = plt.subplots()
    draw(read_csv(CSV) if columns is None else columns, ax)
    if META.get("log_y") and META.get("layout") != "image-grid" and FIGURE != "samples":
        ax.set_yscale("log")  # as on screen; values <= 0 are not drawn
    if META.get("title"):
        ax.set_title("\n".join(textwrap.wrap(META["title"], max(20, int(width_in * 16)))), fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("out", nargs="?")
    p.add_argument("--width-in", type=float, default={width_in!r})
    p.add_argument("--dpi", type=float, default={dpi!r})
    a = p.parse_args()
    print(render(a.out, a.width_in, a.dpi))
'''
