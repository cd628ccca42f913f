"""Convert an exported MIRNet (Paddle Inference format) to ONNX with paddle2onnx.

    python deploy/onnx/export_onnx.py --model_dir=inference --save_file=inference/mirnet.onnx

Batch, height and width stay dynamic. Needs paddle2onnx (requirements.txt).
"""

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from ppmirnet.cli import run_tool, str2bool  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="folder with inference.json/.pdmodel + inference.pdiparams")
    p.add_argument("--save_file", required=True, help="the .onnx file to write")
    p.add_argument("--opset_version", type=int, default=11)
    p.add_argument("--legacy_program", type=str2bool, default=False, help="convert inference.pdmodel, not .json")
    args = p.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", message="No ccache found")
    from ppmirnet.inference.onnx_runtime import export_onnx

    path = export_onnx(args.model_dir, args.save_file, args.opset_version, args.legacy_program)
    print(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB, opset {args.opset_version}, dynamic batch/height/width)")


if __name__ == "__main__":
    sys.exit(run_tool(main))
