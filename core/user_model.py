"""Loading a user's own score network for `infogen bound` (docs/own-models.md).

``FILE.py:NAME`` names a Python file and a function in it that returns the network (a torch module or any
callable ``net(y, t)``). Importing the file runs the user's own code, which is what they ask for by naming it;
the weights are read only from a safetensors file, never from a pickle.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Callable

import torch

from .errors import ConfigError


def load_user_network(spec: str, weights: Path | None = None, device: str = "cpu") -> Callable:
    """The network that ``FILE.py:NAME``'s function builds, with ``weights`` loaded (strict), on ``device``, in
    evaluation mode."""
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name.isidentifier():
        raise ConfigError(f"--model-module must be FILE.py:FUNCTION, for example my_net.py:build; got {spec!r}")
    path = Path(path_text)
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError(f"--model-module: {path} is not a Python file")
    module_name = f"infogen_user_model_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)  # the user's code, by the user's choice
    except Exception as exc:  # noqa: BLE001 (their error, named, not a traceback)
        raise ConfigError(f"--model-module: running {path} failed: {type(exc).__name__}: {exc}") from exc
    build = getattr(module, name, None)
    if not callable(build):
        raise ConfigError(f"--model-module: {path} has no function {name!r}")
    try:
        net = build()
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"--model-module: {name}() in {path} failed: {type(exc).__name__}: {exc}") from exc
    if not callable(net):
        raise ConfigError(f"--model-module: {name}() returned {type(net).__name__}, not a network or a callable")
    if weights is not None:
        if not isinstance(net, torch.nn.Module):
            raise ConfigError(f"--weights needs {name}() to return a torch module, got {type(net).__name__}")
        try:
            net.load_state_dict(_read_weights(weights), strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise ConfigError(f"--weights do not fit the network {name}() builds: {' '.join(first[:3])[:400]}") from None
    if isinstance(net, torch.nn.Module):
        net = net.to(device).eval()
    return net


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors (never a pickle), with the reason named when it cannot be read."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if path.suffix != ".safetensors":
        raise ConfigError(f"--weights reads safetensors files only (no pickles); got {path.name}")
    if not path.is_file():
        raise ConfigError(f"--weights: {path} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"--weights: {path} is not a readable safetensors file ({exc})") from None
