"""Time the authors' PyTorch MIRNet or MIRNet-v2: a reference for run_benchmark.py.

    /path/to/torch-venv/bin/python benchmarks/official_forward.py --repo /path/to/MIRNet \
        --arch '{"name": "MIRNet"}' --height 256 --width 256 --threads 2 --warmup 1 --repeats 2

``--repo`` is a checkout of the official code: github.com/swz30/MIRNet
(``networks/MIRNet_model.py``) for MIRNet, github.com/swz30/MIRNetv2
(``basicsr/models/archs/mirnet_v2_arch.py``) for MIRNet-v2. PyTorch is needed
here only; this package never imports it. The network is built with the
arguments of ``--arch`` (this package's names, mapped to the official ones),
random weights, in eval mode without gradients; one random image is restored
``--warmup`` times untimed and ``--repeats`` times timed, each printing a
``forward_seconds: <s>`` line (the protocol of ``harness.run_reference``).
"""

import argparse
import importlib.util
import json
import os
import sys
import time
import types

# Where each network lives in its official repository, and this package's
# argument names that the official constructor spells differently.
OFFICIAL = {
    "MIRNet": ("networks.MIRNet_model", "MIRNet", {}),
    "MIRNetV2": ("basicsr.models.archs.mirnet_v2_arch", "MIRNet_v2", {"in_channels": "inp_channels"}),
}


def official_arguments(arch):
    """``(module, class, kwargs)`` of the official constructor for a ppmirnet ``Arch`` dict."""
    arch = dict(arch)
    name = arch.pop("name", "MIRNet")
    if name not in OFFICIAL:
        raise ValueError(f"no official model for {name!r}; valid: {', '.join(OFFICIAL)}")
    module, cls, renamed = OFFICIAL[name]
    return module, cls, {renamed.get(k, k): v for k, v in arch.items()}


def network_file(repo, module):
    """The path of ``module`` (dotted) in the checkout ``repo``."""
    return os.path.join(repo, *module.split(".")) + ".py"


def load_network_class(repo, module, cls):
    """The official network class, loaded from its file.

    Only the network's file and the modules it imports run: the packages'
    ``__init__`` files import the training tools' dependencies (natsort,
    OpenCV, lmdb, scikit-image), which a forward pass does not need. Each
    parent package is registered as an empty package over its folder, so
    ``from utils.antialias import ...`` (MIRNet) still finds its module.
    """
    parts = module.split(".")
    for i in range(1, len(parts)):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(repo, *parts[:i])]
            sys.modules[name] = package
    for top in os.listdir(repo):
        folder = os.path.join(repo, top)
        if top.isidentifier() and os.path.isdir(folder) and top not in sys.modules:
            package = types.ModuleType(top)
            package.__path__ = [folder]
            sys.modules[top] = package
    spec = importlib.util.spec_from_file_location(module, network_file(repo, module))
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module] = loaded
    spec.loader.exec_module(loaded)
    return getattr(loaded, cls)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", required=True, help="checkout of swz30/MIRNet or swz30/MIRNetv2")
    p.add_argument("--arch", required=True, help="ppmirnet Arch section as JSON")
    for name in ("height", "width", "threads", "warmup", "repeats"):
        p.add_argument("--" + name, type=int, required=True)
    args = p.parse_args(argv)
    module, cls, kwargs = official_arguments(json.loads(args.arch))
    if not os.path.isfile(network_file(args.repo, module)):
        p.error(f"{args.repo} has no {module.replace('.', '/')}.py: give the official repository "
                f"of this network")
    import torch

    torch.set_num_threads(args.threads)
    model = load_network_class(os.path.abspath(args.repo), module, cls)(**kwargs).eval()
    torch.manual_seed(0)
    x = torch.rand(1, kwargs.get("inp_channels", kwargs.get("in_channels", 3)), args.height, args.width)
    with torch.no_grad():
        for i in range(args.warmup + args.repeats):
            tic = time.perf_counter()
            model(x)
            if i >= args.warmup:
                print(f"forward_seconds: {time.perf_counter() - tic:.6f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
