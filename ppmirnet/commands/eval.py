r"""Evaluate MIRNet or MIRNet-v2 weights: mean PSNR/SSIM over DataLoader.Eval of a config.
Under the task's protocol: denoising, super-resolution, enhancement, defocus
deblurring.

    python tools/eval.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W
    python tools/eval.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W --ensemble
    python tools/eval.py -c configs/mirnet_lite.yaml -o Global.pretrained_model=output/mirnet_lite/best_model --with_input

    python tools/eval.py -c configs/mirnet_realsr_x4.yaml -o Global.pretrained_model=W \
        -o DataLoader.Eval.dataset.root=DIR --save_images out/x4

    python tools/eval.py -c configs/mirnetv2_sidd.yaml --model mirnetv2_sidd   # the authors' weights

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
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="evaluate the authors' weights by name (ppmirnet models) instead of "
                             "Global.pretrained_model")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if args.model is not None:
        from ..zoo import resolve

        cfg["Global"]["pretrained_model"] = resolve(args.model, log=print)

    from ..engine.evaluator import denoise_dnd, evaluate_config
    from ..engine.env import rank
    from ..engine.logger import format_eval_line
    from ..utils.io import atomic_path, check_output_dir
    from ..utils.run_folder import archive_earlier, archive_file

    out_dir = cfg["Global"]["output_dir"]
    if cfg["DataLoader"]["Eval"]["dataset"]["name"] == "DNDBenchmark":
        save_dir = args.save_dir or os.path.join(out_dir, "dnd")
        archive_earlier(save_dir, ["srgb_results_for_server_submission"])
        folder = denoise_dnd(cfg, save_dir, args.ensemble)
        print(f"DND submission written to {folder}")
        return
    path = args.save_json or os.path.join(out_dir, "eval_result.json")
    check_output_dir(os.path.dirname(os.path.abspath(path)))  # before the evaluation, not after
    if args.save_images and rank() == 0:
        # Earlier restored images are moved aside with their folder, never overwritten.
        earlier = os.listdir(args.save_images) if os.path.isdir(args.save_images) else []
        archive_earlier(args.save_images, [n for n in earlier if n.endswith(".png")])
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
    archive_file(path)  # an earlier result stays, renamed
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    if args.save_images:
        print(f"restored images written to {args.save_images}")
    print(f"saved {path}")

