# Entry points: `make demo` (the main job) and `make test`. Both create .venv on first use.
# GPU machines: make TF_PACKAGE='tensorflow[and-cuda]~=2.21.0' demo

PYTHON ?= python3
VENV ?= .venv
TF_PACKAGE ?=
PY := $(VENV)/bin/python
DEMO_OUT ?= out/demo

.PHONY: demo test bazel

# The environment is rebuilt when TF_PACKAGE changes (the marker alone would not notice).
ifneq ($(shell cat $(VENV)/.tf-package 2>/dev/null),$(TF_PACKAGE))
$(shell rm -f $(VENV)/.ready)
endif

$(VENV)/.ready: requirements.txt tests/requirements.txt tests/requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TF_PACKAGE)" ]; then \
	  $(PY) -m pip uninstall --quiet --yes tensorflow-cpu >/dev/null 2>&1; \
	  $(PY) -m pip install --quiet "$(TF_PACKAGE)" && grep -v '^tensorflow-cpu' requirements.txt > $(VENV)/requirements.txt; \
	else cp requirements.txt $(VENV)/requirements.txt; fi
	$(PY) -m pip install --quiet -r $(VENV)/requirements.txt -r tests/requirements.txt
	$(PY) -m pip install --quiet --no-deps -r tests/requirements-nodeps.txt
	echo '$(TF_PACKAGE)' > $(VENV)/.tf-package
	touch $@

# Trains the demo preset (tf_stylegan2/config.py) on the embedded shapes dataset and its class
# labels for 10 kimg, without ADA (10 kimg are too few for p to move, and the pipeline costs time per
# step), then writes samples (a grid row per class), a TF Serving SavedModel, TFLite models and the
# metrics chart from its last snapshot.
demo: $(VENV)/.ready
	$(PY) -m runners.train --outdir=$(DEMO_OUT) --data=builtin:shapes32 --cfg=demo --cond --mirror --aug=noaug \
	  --tick=1 --snap=2 --metrics=fd2k_clf,acc2k_clf
	@run=$$(ls -d $(DEMO_OUT)/0*/ | tail -n 1); set -e; \
	$(PY) -m runners.generate --network=$$run --seeds=0-7 --outdir=$${run}samples; \
	$(PY) -m runners.export_savedmodel --network=$$run --model_base=$${run}serving; \
	$(PY) -m runners.export_tflite --network=$$run --outdir=$${run}tflite --quantize=fp32,fp16; \
	$(PY) -m runners.plot_metrics --run=$$run --reference="fd2k_clf=15.2:blurred reals" \
	  --reference="acc2k_clf=0.97:held-out reals" --reference="acc2k_clf=0.25:chance"; \
	echo "Demo done in $$run: samples $${run}samples/grid.png (a row per class), SavedModel $${run}serving/," \
	  "TFLite $${run}tflite/. Look: tensorboard --logdir=$(DEMO_OUT) ; $(PY) -m runners.preview_tflite" \
	  "--model=$${run}tflite/generator_fp32.tflite --network=$$run --class_idx=2 --out=$${run}tflite/preview.png"

# Bazel builds the compiled ops in tests/custom_ops/test_bazel_build.py. Debian's bazel-bootstrap
# runs offline; it is installed when missing and this user may install packages.
bazel:
	@command -v bazel >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq bazel-bootstrap || { apt-get update -qq && apt-get install -y -qq bazel-bootstrap; }; } \
	  >/dev/null 2>&1; } || echo "bazel is not installed: tests/custom_ops/test_bazel_build.py will be skipped"

test: $(VENV)/.ready bazel
	$(PY) -m pytest -q
