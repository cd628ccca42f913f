"""Evaluate MIRNet weights: mean PSNR/SSIM over DataLoader.Eval of a config.

    python tools/eval.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W
    python tools/eval.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W --ensemble
    python tools/eval.py -c configs/mirnet_lite.yaml -o Global.pretrained_model=output/mirnet_lite/best_model --with_input

    python tools/eval.py -c configs/mirnet_realsr_x4.yaml -o Global.pretrained_model=W \
        -o DataLoader.Eval.dataset.root=DIR --save_images out/x4

SIDD validation .mat blocks or any paired folder (DataLoader.Eval.dataset:
DIR/input + DIR/groundtruth); each image is restored alone, clamped to
[0, 1], and measured under the config's Metric protocol (RGB floats for
denoising and enhancement; Y channel of the 8-bit output with a border crop
for super-resolution), then averaged over images. An image whose predicted peak memory exceeds
Global.max_memory (default: half the memory available at start) is restored
in tiles, and the log says which (docs/memory.md). The protocol is printed
with the result, which is saved as JSON (--save_json, default
Global.output_dir/eval_result.json).
With the DND config (configs/mirnet_dnd.yaml) it writes the DND server
submission instead (--save_dir, default Global.output_dir/dnd).
"""

import json
import os

from ..cli import add_config_args, config_from_args, make_parser, str2bool


def main(argv=None, prog=None):
    parser = add_config_args(make_parser(__doc__, prog))
    parser.add_argument("--ensemble", type=str2bool, nargs="?", const=True, default=False,
                        help="x8 self-ensemble (average over the 8 flips/rotations)")
    parser.add_argument("--with_input", type=str2bool, nargs="?", const=True, default=False,
                        help="also report the metrics of the input (noisy, LR or dark image)")
    parser.add_argument("--save_json", default=None,
                        help="where to save the result (default Global.output_dir/eval_result.json)")
    parser.add_argument("--save_images", default=None, metavar="DIR",
                        help="write every restored image to DIR as 8-bit PNG, named as its input")
    parser.add_argument("--save_dir", default=None,
                        help="DND only: where the submission folder goes (default Global.output_dir/dnd)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)

    from ..engine.evaluator import denoise_dnd, evaluate_config
    from ..engine.env import rank
    from ..engine.logger import format_eval_line
    from ..utils.io import atomic_path

    out_dir = cfg["Global"]["output_dir"]
    if cfg["DataLoader"]["Eval"]["dataset"]["name"] == "DNDBenchmark":
        folder = denoise_dnd(cfg, args.save_dir or os.path.join(out_dir, "dnd"), args.ensemble)
        print(f"DND submission written to {folder}")
        return
    report = evaluate_config(cfg, ensemble=args.ensemble, with_input=args.with_input,
                             save_images=args.save_images)
    if rank() != 0:
        return
    print(f"[Eval] protocol: {report['protocol']['description']}")
    if args.with_input:
        print(format_eval_line({"psnr": report["input_psnr"], "ssim": report["input_ssim"]},
                               "[Eval] input:"))
    print(format_eval_line(report) + f", images: {report['images']}"
          + (", ensemble: x8" if args.ensemble else ""))
    path = args.save_json or os.path.join(out_dir, "eval_result.json")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    if args.save_images:
        print(f"restored images written to {args.save_images}")
    print(f"saved {path}")

