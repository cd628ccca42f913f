"""Restore images with an exported MIRNet through OpenVINO (no Paddle needed).

    python deploy/openvino/infer.py --model=inference/mirnet_ov --image_dir=noisy/ --output_dir=out/
    python deploy/openvino/infer.py --model=inference/mirnet.onnx --image_dir=noisy/ --output_dir=out/

--model is a folder exported with ``ppmirnet export --for_openvino`` (its
``inference.pdmodel``) or an ONNX file of ``deploy/onnx/export_onnx.py``.
Same processing, outputs and ``--benchmark`` report as
``deploy/inference/infer.py``. Every flag accepts ``--flag=value``.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from ppmirnet.cli import run_tool  # noqa: E402
from ppmirnet.inference.openvino_runtime import PRECISIONS, OpenVinoPredictor  # noqa: E402
from ppmirnet.inference.pipeline import add_front_end_args, run_front_end  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True,
                   help="a folder exported with --for_openvino (inference.pdmodel), or an .onnx file")
    add_front_end_args(p, "output/openvino")
    p.add_argument("--precision", default="fp32", choices=tuple(PRECISIONS),
                   help="fp32 (default), or bf16 on CPUs with bfloat16 units (faster with AMX)")
    args = p.parse_args(argv)
    run_front_end(args, lambda: OpenVinoPredictor(args.model, args.cpu_threads, precision=args.precision))


if __name__ == "__main__":
    sys.exit(run_tool(main))
