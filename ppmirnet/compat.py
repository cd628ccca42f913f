"""What differs between the Paddle lines this project runs on: 2.6 (the package index's
``paddlepaddle-gpu``) and 3.x (Paddle's own wheel index).

Everything that depends on the installed Paddle's version goes through here,
so the rest of the code reads the same on both.
"""

def import_paddle():
    """Import and return ``paddle`` without the warning it gives about ccache.

    Paddle warns on import that ccache (a compiler cache for building C++
    extensions) is absent; nothing here builds an extension, so the warning
    says nothing to the user. Only that warning, from that module, is
    dropped, and only while Paddle is first imported (the filters are
    restored after).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning,
                                module=r"paddle\.utils\.cpp_extension")
        import paddle
    return paddle


def paddle_version():
    """The installed Paddle's ``(major, minor)``; ``(0, 0)`` for a development build."""
    import paddle

    parts = paddle.__version__.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return 0, 0


def pir_enabled():
    """Whether ``paddle.jit.save`` writes the PIR (``.json``) program in this process."""
    import paddle

    use_pir = getattr(paddle.framework, "use_pir_api", None)
    return bool(use_pir and use_pir())


def program_formats():
    """Program files the installed Paddle can write and run, preferred first.

    Paddle 3 writes and reads the PIR ``.json`` program and still the legacy
    ``.pdmodel`` (written with ``FLAGS_enable_pir_api=0``); Paddle 2.6 knows
    only ``.pdmodel``.
    """
    major = paddle_version()[0]
    return (".json", ".pdmodel") if major >= 3 or major == 0 else (".pdmodel",)


def paddle2onnx_requirement():
    """The paddle2onnx pin for the installed Paddle: 2.x refuses Paddle < 3 at import."""
    return "paddle2onnx==2.1.0" if paddle_version() >= (3, 0) or paddle_version() == (0, 0) \
        else "paddle2onnx==1.3.1"


# -- random number generators ---------------------------------------------------------

def _current_generator():
    """``(kind, generator)`` of the device this process computes on."""
    import paddle
    from paddle.base import core

    place = paddle.framework._current_expected_place_()
    if isinstance(place, paddle.CUDAPlace):
        return "gpu", core.default_cuda_generator(place.get_device_id())
    return "cpu", core.default_cpu_generator()


def get_rng_state():
    """The random state of this process's device: ``{"device": "cpu"|"gpu", "state": ...}``.

    Only the generator the run uses is saved: ``paddle.get_rng_state()``
    holds one entry per visible GPU, which another machine cannot restore.
    """
    kind, gen = _current_generator()
    # Paddle 2.6's GeneratorState pickles to its seed only: restoring it would
    # silently give another state, so none is saved there.
    state = gen.get_state() if paddle_version() >= (3, 0) or paddle_version() == (0, 0) else None
    return {"device": kind, "state": state}


def set_rng_state(saved):
    """Restore :func:`get_rng_state`'s result; returns None or why it could not apply.

    Never raises: a resume must not fail on the random state (MIRNet's
    training draws no Paddle random numbers after initialisation; crops,
    order and MixUp are seeded by position). Also reads the list that
    ``paddle.get_rng_state()`` returns (older checkpoints).
    """
    kind, gen = _current_generator()
    try:
        if isinstance(saved, dict):
            if saved.get("device") != kind:
                return f"it was saved on {saved.get('device')}, this run is on {kind}"
            state = saved["state"]
            if state is None:
                return "Paddle 2.6, which saved it, cannot store a random state"
        else:
            states = list(saved)
            if len(states) != 1:
                return (f"it holds {len(states)} device states (one per visible GPU of the "
                        f"saving machine), this run uses one {kind} generator")
            state = states[0]
        gen.set_state(state)
    except Exception as err:  # Paddle raises several types for a foreign state
        return f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
    return None


# -- optimizer ------------------------------------------------------------------------

def skip_step_if(optimizer, found_inf):
    """Make the next ``optimizer.step()`` a no-op where the bool tensor ``found_inf`` is true.

    This is the mechanism ``paddle.amp.GradScaler`` uses (the optimizer reads
    the flag once per step); without AMP the trainer sets it itself.
    """
    optimizer._set_auxiliary_var("found_inf", found_inf)


def all_finite(tensors):
    """A bool tensor (on the device, no host sync): whether every value of ``tensors`` is finite."""
    import paddle

    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return paddle.ones([], "bool")
    fused = getattr(getattr(paddle, "_C_ops", None), "check_finite_and_unscale_", None)
    if fused is not None and tensors[0].dtype == paddle.float32:
        # GradScaler's one kernel over the list (unscaling by 1 leaves the values as they are).
        try:
            _, found = fused(tensors, paddle.ones([1], "float32"))
            return paddle.logical_not(found.reshape([]))
        except (TypeError, ValueError, RuntimeError):
            pass  # another signature in this Paddle: the generic way below
    return paddle.stack([paddle.isfinite(t).all() for t in tensors]).all()


def set_cpu_math_threads(count):
    """Let the CPU math library behind dygraph kernels (convolution's GEMM above all) use ``count`` threads.

    Paddle's dygraph CPU kernels run on one thread unless told otherwise
    (importing Paddle sets ``OMP_NUM_THREADS=1`` when it is unset): a
    training step of ``tools/train.py`` ran on one core of two. The setter
    is not public API; it is
    ``paddle.base.core.set_num_threads`` in 2.6 and 3.x alike
    (``tests/test_env.py`` notices if it goes).
    """
    from paddle.base import core

    core.set_num_threads(int(count))
