# genimg_fast developer entry points. Each target bootstraps .venv on a fresh machine:
# python -m venv, torch + build tools, then the package built in place with --no-build-isolation.
#   make demo       a short DCGAN run on the built-in shapes (samples + loss curve in runs/demo), then the quick benchmark
#   make test       the whole test suite (CUDA tests skip without a GPU)
#   make bench      pytest-benchmark suite and the full `genimg-fast bench` (record kept in benchmarks/results/)
#   make gpu-check  one-shot check on a lent GPU machine (system python3, no venv; see scripts/gpu_check.sh)

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1
TORCHVISION_SPEC ?= torchvision==0.29.1
MAX_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

# The kernels only run on a GPU: on a machine without one (no nvidia-smi listing a GPU) the build
# skips compiling them unless GENIMG_FAST_BUILD_CUDA=1 asks (CI asks, so a broken .cu still fails).
ifeq ($(origin GENIMG_FAST_BUILD_CUDA),undefined)
GENIMG_FAST_BUILD_CUDA := $(shell nvidia-smi -L 2>/dev/null | grep -q GPU || echo 0)
endif
export GENIMG_FAST_BUILD_CUDA

PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-installed
BUILD_SETTINGS := $(VENV)/.build-settings
BUILD_STAMP := $(VENV)/.genimg_fast-built
SOURCES := setup.py pyproject.toml $(shell find csrc buildtools -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: demo test bench gpu-check build clean FORCE

DEMO_TRAIN := --data shapes --image-size 32 --ngf 64 --ndf 64 --batch-size 64 --dataset-size 4096 --epochs 15

demo: $(BUILD_STAMP)
	$(PY) -m genimg_fast.cli info
	$(PY) -m genimg_fast.cli train dcgan $(DEMO_TRAIN) --out runs/demo --overwrite  # a fresh demo each time
	$(PY) -m genimg_fast.cli bench --quick

test: $(BUILD_STAMP)
	$(PY) -m pytest tests benchmarks --benchmark-disable

# The full suite's record, summary and chart are kept under benchmarks/results/, one set per run.
BENCH_RUN := benchmarks/results/bench-$(shell date -u +%Y%m%dT%H%M%SZ)

bench: $(BUILD_STAMP)
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,max,rounds
	$(PY) -m genimg_fast.cli bench --json $(BENCH_RUN).json --markdown $(BENCH_RUN).md --plot $(BENCH_RUN).png

gpu-check:
	bash scripts/gpu_check.sh

build: $(BUILD_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" "$(TORCHVISION_SPEC)" -r requirements-dev.txt
	touch $@

# Rebuild when the build knobs change, not only when sources do.
$(BUILD_SETTINGS): FORCE | $(PY)
	@echo "GENIMG_FAST_BUILD_CUDA=$(GENIMG_FAST_BUILD_CUDA) TORCH_CUDA_ARCH_LIST=$(TORCH_CUDA_ARCH_LIST) CUDA_HOME=$(CUDA_HOME)" \
		| cmp -s - $@ || echo "GENIMG_FAST_BUILD_CUDA=$(GENIMG_FAST_BUILD_CUDA) TORCH_CUDA_ARCH_LIST=$(TORCH_CUDA_ARCH_LIST) CUDA_HOME=$(CUDA_HOME)" > $@

$(BUILD_STAMP): $(DEPS_STAMP) $(BUILD_SETTINGS) $(SOURCES)
	@echo "building genimg_fast (log: $(VENV)/build.log) ..."
	@MAX_JOBS=$(MAX_JOBS) $(PY) -m pip install -v --no-build-isolation --no-deps -e . > $(VENV)/build.log 2>&1 \
		|| { tail -n 60 $(VENV)/build.log; echo "build failed: see $(VENV)/build.log"; exit 1; }
	@grep -m1 "genimg_fast: " $(VENV)/build.log | sed 's/^ *//'
	@touch $@

clean:
	rm -rf build *.egg-info genimg_fast/_C*.so genimg_fast/_build_config.py genimg_fast/_kernel_fingerprints.json \
		$(VENV)/.genimg_fast-built

FORCE:
