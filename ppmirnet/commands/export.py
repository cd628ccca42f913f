r"""Export MIRNet or MIRNet-v2 weights to a static inference model with dynamic height and width.
Any task: denoising, super-resolution, enhancement, defocus deblurring.

    python tools/export_model.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        --save_dir inference/mirnet_sidd
    python tools/export_model.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        -o Global.save_inference_dir=inference/mirnet_sidd --legacy_format

    ppmirnet export --model mirnetv2_sidd        # the authors' weights -> inference/mirnetv2_sidd

Writes inference.json + inference.pdiparams (Paddle 3) and, with
--legacy_format, also inference.pdmodel (read by Paddle 2.6 and Paddle
Serving). --for_openvino writes instead the inference.pdmodel that OpenVINO
reads (deploy/openvino). Input "x": float32 [N, 3, H, W] in [0, 1], any H and W.
"""

import os

from ..cli import add_config_args, config_from_args, make_parser, str2bool
from ..errors import UserError


def main(argv=None, prog=None):
    parser = add_config_args(make_parser(__doc__, prog), required=False)
    parser.add_argument("--save_dir", default=None,
                        help="output folder (default: Global.save_inference_dir)")
    parser.add_argument("--legacy_format", type=str2bool, nargs="?", const=True, default=False,
                        help="also write the .pdmodel program of Paddle 2.6 / Paddle Serving")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="export the authors' weights by name (ppmirnet models); -c is then "
                             "optional (default --save_dir: inference/NAME)")
    parser.add_argument("--for_openvino", type=str2bool, nargs="?", const=True, default=False,
                        help="write the .pdmodel program OpenVINO reads (deploy/openvino), only that")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if cfg is None and args.model is None:
        raise UserError("give -c CONFIG (with -o Global.pretrained_model=W) or --model NAME")
    weights = None
    if args.model is not None:
        from ..zoo import get

        get(args.model)
    save_dir = args.save_dir or (cfg["Global"]["save_inference_dir"] if cfg
                                 else os.path.join("inference", args.model))

    import paddle

    from ..engine.dygraph import load_model
    from ..export import export_inference_model
    from ..restorer import load_dygraph_model
    from ..utils.run_folder import archive_earlier

    if args.model is not None:
        from ..zoo import resolve

        weights = resolve(args.model, log=print)
    paddle.set_device("cpu")
    model = load_model(cfg, weights) if cfg else load_dygraph_model(weights)[0]
    # An earlier export in the folder is moved aside, never overwritten.
    archive_earlier(save_dir, ["inference" + ext for ext in (".json", ".pdmodel", ".pdiparams")])
    written = export_inference_model(model, save_dir, legacy_format=args.legacy_format or args.for_openvino,
                                     forms="openvino" if args.for_openvino else None)
    for path in written:
        print(f"wrote {path}")

