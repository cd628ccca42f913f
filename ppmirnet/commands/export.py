"""Export MIRNet weights to a static inference model with dynamic height and width.

    python tools/export_model.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        --save_dir inference/mirnet_sidd
    python tools/export_model.py -c configs/mirnet_sidd.yaml -o Global.pretrained_model=W \
        -o Global.save_inference_dir=inference/mirnet_sidd --legacy_format

Writes inference.json + inference.pdiparams (Paddle 3) and, with
--legacy_format, also inference.pdmodel (read by Paddle 2.6 and Paddle
Serving). --for_openvino writes instead the inference.pdmodel that OpenVINO
reads (deploy/openvino). Input "x": float32 [N, 3, H, W] in [0, 1], any H and W.
"""

from ..cli import add_config_args, config_from_args, make_parser, str2bool


def main(argv=None, prog=None):
    parser = add_config_args(make_parser(__doc__, prog))
    parser.add_argument("--save_dir", default=None,
                        help="output folder (default: Global.save_inference_dir)")
    parser.add_argument("--legacy_format", type=str2bool, nargs="?", const=True, default=False,
                        help="also write the .pdmodel program of Paddle 2.6 / Paddle Serving")
    parser.add_argument("--for_openvino", type=str2bool, nargs="?", const=True, default=False,
                        help="write the .pdmodel program OpenVINO reads (deploy/openvino), only that")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    save_dir = args.save_dir or cfg["Global"]["save_inference_dir"]

    import paddle

    from ..engine.dygraph import load_model
    from ..export import export_inference_model

    paddle.set_device("cpu")
    model = load_model(cfg)
    written = export_inference_model(model, save_dir, legacy_format=args.legacy_format or args.for_openvino,
                                     forms="openvino" if args.for_openvino else None)
    for path in written:
        print(f"wrote {path}")

