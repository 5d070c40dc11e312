#!/usr/bin/env bash
# The CUDA checks of issues #2, #4 and #7 in one go, for a machine with an NVIDIA GPU (about 6 minutes on
# an H200), from the repository's root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]        (default: gpu_check_out/)
#
# 1. tests/test_cuda.py: every GPU option trained for real (bf16/fp16 autocast, channels_last,
#    torch.compile), no host round trip per step, the measured batch finder and a real out-of-memory error,
#    every template trained by the CLI on the GPU, a GPU checkpoint exported to ONNX, the app's training
#    process on the GPU with the window's process never starting CUDA;
# 2. benchmarks/bench_engine.py --device cuda: compiled graph / hand-written module step ratios, also at
#    batch 512 with bf16 + channels_last, and torch.compile graph breaks on the CNN templates;
# 3. benchmarks/bench_training.py --device cuda: our training loop / a hand-written loop, per epoch.
# Each step has its own time limit, so one that hangs leaves the others their time. Logs go to OUT_DIR.
set -u
out=${1:-gpu_check_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
{
    nvidia-smi -L
    $py -c "import torch, onnx, onnxruntime; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__, 'GPU', torch.cuda.get_device_name())"
} 2>&1 | tee "$out/env.log"
timeout "${TEST_SECONDS:-240}" $py -m pytest -v -s -p no:cacheprovider --durations=8 tests/test_cuda.py 2>&1 \
    | tee "$out/test_cuda.log"
timeout "${ENGINE_SECONDS:-110}" $py benchmarks/bench_engine.py --device cuda 2>&1 | tee "$out/bench_engine.log"
timeout "${TRAINING_SECONDS:-90}" $py benchmarks/bench_training.py --device cuda 2>&1 | tee "$out/bench_training.log"
echo "gpu_check: done" | tee -a "$out/env.log"
