"""The ``ppmirnet`` command: one subcommand per tool, each a module of this package.

    ppmirnet train -c configs/mirnet_lite.yaml
    ppmirnet predict --weights output/mirnet_lite/best_model.pdparams --input photo.png --output out/
    ppmirnet <command> --help

``tools/*.py`` and ``deploy/inference/infer.py`` are thin scripts over the
same ``main`` functions, so both spellings take the same options and fail the
same way: a user mistake prints one ``error:`` line and exits with 1.
"""

import importlib
import sys

# command -> (module of this package, one-line summary)
COMMANDS = {
    "train": ("train", "train a model of any task (denoising, super-resolution, enhancement, "
                       "defocus deblurring) from a YAML config"),
    "eval": ("eval", "PSNR/SSIM of weights on a config's validation set, under its task's protocol"),
    "predict": ("predict", "restore images (denoise, super-resolve, enhance, deblur) with weights"),
    "export": ("export", "export weights to a Paddle Inference model"),
    "convert": ("convert", "convert official PyTorch weights to .pdparams"),
    "models": ("models", "list the authors' trained networks available by name"),
    "download": ("download", "download and convert the authors' weights by name"),
    "infer": ("infer", "restore images with an exported model (Paddle Inference)"),
    "figure": ("figure", "render input | restored | ground truth crops with their PSNR"),
    "demo": ("demo", "a try-it page in the browser (Gradio, on 127.0.0.1)"),
}


def _usage():
    from .. import __version__
    from ..cli import EXIT_STATUS

    width = max(len(n) for n in COMMANDS)
    lines = [f"usage: ppmirnet <command> [options]   (ppmirnet {__version__})", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "ppmirnet <command> --help shows the options of a command.", "", EXIT_STATUS]
    return "\n".join(lines)


def command_main(name):
    """The ``main(argv, prog)`` function of subcommand ``name``."""
    module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    return module.main


def main(argv=None):
    """Entry point of the ``ppmirnet`` console script; returns the exit code."""
    from ..cli import run_tool

    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(_usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from .. import __version__

        print(f"ppmirnet {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(_usage(), file=sys.stderr)
        print(f"error: unknown command {name!r}; expected one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    tool = command_main(name)
    return run_tool(lambda args: tool(args, prog=f"ppmirnet {name}"), argv[1:])
