#!/usr/bin/env bash
# Session-local focused GPU run (not committed): rebuild, the training/inference/bench CUDA tests
# (CUDAGraphStep now captures through graph_capture.captured), and the networks + training
# iterations outside --quick (bf16 and channels_last too), then pix2pix's again in a second process.
set -u
PY=python3
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv; $PY -c "import torch; print(torch.__version__)"; } > $OUT/machine.log 2>&1
s=$SECONDS
TORCH_CUDA_ARCH_LIST=9.0a GENIMG_FAST_BUILD_CUDA=1 MAX_JOBS=16 timeout 150 $PY setup.py build_ext --inplace > $OUT/build.log 2>&1; echo "build rc=$? $((SECONDS-s)) s" >> $OUT/machine.log
s=$SECONDS
GENIMG_FAST_IMPL=cuda timeout 100 $PY -m pytest tests/test_train_cuda.py tests/test_inference.py tests/test_bench_cuda.py -n 4 -q -p no:cacheprovider -rfEs > $OUT/tests_training.log 2>&1; echo "tests rc=$? $((SECONDS-s)) s" >> $OUT/machine.log
s=$SECONDS
GENIMG_FAST_IMPL=cuda timeout 170 $PY -m genimg_fast.cli bench --models --device cuda --repeats 300 --json $OUT/bench_models_full.json --markdown $OUT/bench_models_full.md > $OUT/bench_models_full.log 2>&1; echo "models rc=$? $((SECONDS-s)) s" >> $OUT/machine.log
s=$SECONDS
GENIMG_FAST_IMPL=cuda timeout 60 $PY -m genimg_fast.cli bench --models --device cuda --repeats 300 --only "pix2pix generator b1" --json $OUT/bench_unet_again.json > $OUT/bench_unet_again.log 2>&1; echo "unet again rc=$? $((SECONDS-s)) s" >> $OUT/machine.log
cd $OUT && tar czf logs.tar.gz --remove-files *.log *.md 2>/dev/null; true
