"""Restore images with a MIRNet ONNX model through onnxruntime (no Paddle needed).

    python deploy/onnx/infer.py --onnx_file=inference/mirnet.onnx --image_dir=noisy/ --output_dir=out/

Same processing, outputs and ``--benchmark`` report as
``deploy/inference/infer.py``. Every flag accepts ``--flag=value``.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from ppmirnet.cli import run_tool  # noqa: E402
from ppmirnet.inference.pipeline import add_front_end_args, run_front_end  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx_file", required=True)
    add_front_end_args(p, "output/onnx")
    args = p.parse_args(argv)
    from ppmirnet.inference.onnx_runtime import OnnxPredictor

    run_front_end(args, lambda: OnnxPredictor(args.onnx_file, args.cpu_threads))


if __name__ == "__main__":
    sys.exit(run_tool(main))
