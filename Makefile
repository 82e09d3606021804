# genrekit: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/gtzan

.PHONY: setup demo test test-quick lint types format benchmarks bundled-model onnx pretrained clean

$(BIN)/genrekit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[train,test,scale,beets]"
	@touch $@

setup: $(BIN)/genrekit

demo: setup
	$(BIN)/python examples/demo.py --data "$(DATA)"

test: setup
	$(BIN)/python -m pytest -q

# the tests that take under a second or so (slow ones: @pytest.mark.slow); benchmarks/quick_tests.py times it
test-quick: setup
	$(BIN)/python -m pytest -m "not slow" -q

# what CI checks before the tests (.ci/run): ruff's lint and format check, then the type check;
# `make format` fixes what ruff can fix and formats the code
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) types

# the type check of src/ (its settings: [tool.mypy] in pyproject.toml)
types: setup
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The exact recipe of the bundled default model (musicnn embeddings + a linear head on the 335 GTZAN
# clips with audio, its temperature and confident threshold from 5-fold out-of-fold predictions on
# those clips and two augmented copies of each, cached on first use; --recipe gknet for the bundled
# gknet), then its ONNX export. The head also holds its out-of-distribution gate (genre means and covariance of
# the training patches, threshold the 99th percentile of held-out windows' distances).
# The figures it stores come from benchmarks/results/outside_variants.json.
bundled-model: setup
	$(BIN)/python benchmarks/bundled_model.py --data $(DATA)
	$(BIN)/python scripts/export_onnx.py

# the bundled model's ONNX export (bundled/*.onnx + card), which predict and serve run without torch;
# re-run after retraining the bundled model (a stale export is ignored: torch is used instead)
onnx: setup
	$(BIN)/python scripts/export_onnx.py

# musicnn weights (ISC, MTG-UPF): pip-downloads the musicnn 0.1.0 wheel (never installed) and converts
# its TensorFlow checkpoints without tensorflow into src/genrekit/pretrained/*.pt
pretrained: setup
	$(BIN)/python scripts/convert_musicnn.py --out src/genrekit/pretrained

# the seeds' protocols at the budget 2 CPU cores afforded (S003 cut); SEED_BUDGET= runs their full budgets (GPU)
SEED_BUDGET ?= --images seed003 --clips-per-genre seed003=30 --max-epochs seed003=20 --repetitions seed003=2 --precision bf16

benchmarks: setup
	$(BIN)/python benchmarks/features_speed.py --data $(DATA)
	$(BIN)/python benchmarks/render_pixels.py
	$(BIN)/python benchmarks/images_protocols.py --data $(DATA)
	$(BIN)/python benchmarks/audio_cv.py --data $(DATA)
	$(BIN)/python benchmarks/musicnn_heads.py --data $(DATA)
	$(BIN)/python benchmarks/bridge.py --data $(DATA)
	$(BIN)/python benchmarks/seed_protocols.py --data $(DATA) $(SEED_BUDGET)
	$(BIN)/python benchmarks/predict_speed.py --data $(DATA)
	$(BIN)/python benchmarks/ray_scaling.py --data $(DATA)
	$(BIN)/python benchmarks/cli_start.py
	$(BIN)/python benchmarks/cold_start.py --data $(DATA)
	$(BIN)/python benchmarks/web_load.py
	$(BIN)/python benchmarks/web_attack.py
	$(BIN)/python benchmarks/hostile.py
	$(BIN)/python benchmarks/quick_tests.py

clean:
	rm -rf $(VENV) runs .pytest_cache
