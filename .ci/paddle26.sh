#!/usr/bin/env bash
# CI, second job: the Paddle 2.6 line (what `pip install paddlepaddle-gpu` gives
# from the package index; the CPU build stands in for it) in its own virtual
# environment: the model, conversion, metrics, processing, training, export and
# inference tests, then the lite training end to end (train, evaluate, predict,
# export, Paddle Inference). Prints the job's time.
#
#   bash .ci/paddle26.sh [setup|test|all]      (default: all)
#
# `setup` only builds the environment (.ci/run does it while the main tests run).
set -euo pipefail
cd "$(dirname "$0")/.."
start=${SECONDS}
what=${1:-all}
case ${what} in
    setup|test|all) ;;
    *) echo "usage: bash .ci/paddle26.sh [setup|test|all]" >&2; exit 2 ;;
esac

if [[ ${what} != test ]]; then
    python3 -m venv .venv-paddle26
    .venv-paddle26/bin/python -m pip install -q --upgrade pip
    .venv-paddle26/bin/python -m pip install -q -r requirements-paddle26.txt
    .venv-paddle26/bin/python -c "import paddle; assert paddle.__version__ == '2.6.2', paddle.__version__"
    echo "Paddle 2.6.2 environment: ready in $((SECONDS - start)) s"
    [[ ${what} == setup ]] && exit 0
fi
. .venv-paddle26/bin/activate

export GLOG_minloglevel=2
python -m pytest -q tests/test_model.py tests/test_convert.py tests/test_metrics.py \
    tests/test_processing.py tests/test_train.py tests/test_train_faults.py \
    tests/test_mixup_and_ensemble.py tests/test_export.py tests/test_inference.py \
    tests/test_onnx.py tests/test_tensorrt_logic.py tests/test_zlib_order.py

out=$(mktemp -d)
trap 'rm -rf "${out}"' EXIT
# predict exports the weights for the fastest engine installed (onnxruntime
# here): its cache goes with the job's other outputs.
export PPMIRNET_HOME="${out}/home"
# The lite recipe, 2 of its 8 epochs: every stage runs, in CI time.
python tools/train.py -c configs/mirnet_lite.yaml -o Global.output_dir="${out}/train" Global.epochs=2
python tools/eval.py -c configs/mirnet_lite.yaml -o Global.pretrained_model="${out}/train/best_model" \
    Global.output_dir="${out}/eval"
python tools/predict.py -c configs/mirnet_lite.yaml --weights "${out}/train/best_model" \
    --input data/lite/val/input --output "${out}/predicted"
test "$(ls "${out}/predicted" | wc -l)" -eq "$(ls data/lite/val/input | wc -l)"
python tools/export_model.py -c configs/mirnet_lite.yaml \
    -o Global.pretrained_model="${out}/train/best_model" --save_dir "${out}/inference" --legacy_format
python deploy/inference/infer.py --model_dir="${out}/inference" --image_dir=data/lite/val/input \
    --output_dir="${out}/restored"
test "$(ls "${out}/restored" | wc -l)" -eq "$(ls data/lite/val/input | wc -l)"
echo "Paddle 2.6.2 job: passed in $((SECONDS - start)) s"
