"""Train MIRNet from a YAML config.

    python tools/train.py -c configs/mirnet_lite.yaml
    python tools/train.py -c configs/mirnet_sidd.yaml -o Global.device=gpu
    python -m paddle.distributed.launch --gpus 0,1,2,3 tools/train.py -c configs/mirnet_sidd.yaml
    python tools/train.py -c configs/mirnet_sidd.yaml -o Global.resume=auto

Writes config.yaml, train.log and the latest/best_model checkpoints
(.pdparams/.pdopt/.pdstates) into Global.output_dir.
"""

import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from ppmirnet.cli import run_tool
from ppmirnet.engine.cli_args import add_config_args, config_from_args, make_parser


def main(argv=None):
    parser = add_config_args(make_parser(__doc__))
    args = parser.parse_args(argv)
    cfg = config_from_args(args)

    from ppmirnet.engine.trainer import Trainer

    Trainer(cfg).train()


if __name__ == "__main__":
    sys.exit(run_tool(main))
