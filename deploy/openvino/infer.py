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

from ppmirnet.cli import run_tool, str2bool  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True,
                   help="a folder exported with --for_openvino (inference.pdmodel), or an .onnx file")
    p.add_argument("--image_dir", required=True, help="an image file or a folder of images")
    p.add_argument("--image_dir_right", default=None,
                   help="dual-pixel models: the right views (a file, or a folder with the file "
                        "names of --image_dir)")
    p.add_argument("--output_dir", default="output/openvino")
    p.add_argument("--cpu_threads", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--tile", type=int, default=0, help="tile size (multiple of 8) for large images; 0 = whole image")
    p.add_argument("--tile_overlap", type=int, default=32)
    p.add_argument("--max_memory", default=None, metavar="SIZE",
                   help="memory budget, e.g. 3G or 512M: images that would need more are restored in the "
                        "largest tiles that fit (default: half the memory available at start; "
                        "ignored with --tile)")
    p.add_argument("--benchmark", type=str2bool, default=False)
    p.add_argument("--save_log_path", default=None)
    args = p.parse_args(argv)
    from ppmirnet import memory, processing
    from ppmirnet.files import check_budget, check_inputs_fit, check_settings, plan_outputs
    from ppmirnet.inference.openvino_runtime import OpenVinoPredictor
    from ppmirnet.inference.pipeline import restore_and_report

    inputs = processing.list_inputs(args.image_dir, args.image_dir_right)
    check_settings(args.batch_size, args.tile, args.tile_overlap)
    plan_outputs(inputs, args.output_dir)
    budget = None if args.tile else memory.make_budget(args.max_memory)
    check_budget(inputs, budget)
    predictor = OpenVinoPredictor(args.model, args.cpu_threads)
    check_inputs_fit(predictor, inputs, "the right views with --image_dir_right")
    restore_and_report(predictor, inputs, args.output_dir, args.batch_size, args.tile, args.tile_overlap,
                       benchmark=args.benchmark, save_log_path=args.save_log_path, budget=budget)


if __name__ == "__main__":
    sys.exit(run_tool(main))
