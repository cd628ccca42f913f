"""ppmirnet.export: both program formats, one parameter file, dynamic sizes."""

import os

import numpy as np
import paddle
import pytest
from paddle import inference

from ppmirnet.compat import program_formats
from ppmirnet.errors import UserError
from ppmirnet.export import export_inference_model, find_program
from ppmirnet.modeling import MIRNet


def predict(program, params, x):
    config = inference.Config(program, params)
    config.disable_gpu()
    predictor = inference.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(x.shape)
    handle.copy_from_cpu(x)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


def test_both_formats_share_parameters_and_match_dygraph(tmp_path):
    # Models built earlier in the process shift the generated parameter names.
    _ = [MIRNet(n_feat=8, n_RRG=1, n_MSRB=1) for _ in range(2)]
    paddle.seed(5)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    model.eval()
    written = export_inference_model(model, str(tmp_path), legacy_format=True)
    # Paddle 3: the PIR .json and the legacy .pdmodel; Paddle 2.6: .pdmodel only.
    files = sorted(["inference.pdiparams"] + ["inference" + ext for ext in program_formats()])
    assert sorted(os.path.basename(p) for p in written) == files
    assert sorted(os.listdir(tmp_path)) == files
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 48, 64), (2, 3, 37, 45)]:
        x = rng.random(shape, dtype=np.float32)
        ref = model(paddle.to_tensor(x)).numpy()
        for legacy in (False, True):
            program, params = find_program(str(tmp_path), prefer_legacy=legacy)
            assert program.endswith(".pdmodel" if legacy or ".json" not in program_formats()
                                    else ".json")
            out = predict(program, params, x)
            assert out.shape == shape and np.abs(out - ref).max() < 1e-4


def test_find_program_names_the_folder(tmp_path):
    with pytest.raises(UserError, match=f"no exported model in {tmp_path}"):
        find_program(str(tmp_path))
