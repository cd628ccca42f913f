"""Train MIRNet from a YAML config.

    python tools/train.py -c configs/mirnet_lite.yaml
    python tools/train.py -c configs/mirnet_sidd.yaml -o Global.device=gpu
    python -m paddle.distributed.launch --gpus 0,1,2,3 tools/train.py -c configs/mirnet_sidd.yaml
    python tools/train.py -c configs/mirnet_sidd.yaml -o Global.resume=auto

Writes config.yaml, train.log and the latest/best_model checkpoints
(.pdparams/.pdopt/.pdstates) into Global.output_dir.
"""

from ..cli import add_config_args, config_from_args, make_parser


def main(argv=None, prog=None):
    parser = add_config_args(make_parser(__doc__, prog))
    args = parser.parse_args(argv)
    cfg = config_from_args(args)

    from ..engine.trainer import Trainer

    Trainer(cfg).train()

