# mediagate: `make run` starts everything on a fresh Debian machine; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_RUN := node --import tsx
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
REDIS_PORT ?= 6379
TEST_FILES = $(shell find test -name '*.test.ts' | sort)

.PHONY: help deps system-deps nginx-rtmp chromium bench-deps run run-transcoder run-ai-worker redis test test-unit test-integration typecheck check-boundaries bench bench-quick scale-demo clean

help:
	@echo "make run             start Redis (if none) and the gateway with an embedded transcoder"
	@echo "make run-transcoder  start an extra transcoder process on the same Redis"
	@echo "make run-ai-worker   start the reference AI worker (ESRGAN upscale on CPU, port 8000), registered with"
	@echo "                     the local gateway of make run (MEDIAGATE_AI_WORKER_GATEWAY_URL, default http://127.0.0.1:9935)"
	@echo "make test            install what is missing, check the import rules, typecheck, run every test"
	@echo "make check-boundaries  the import rules between folders and packages (.dependency-cruiser.cjs)"
	@echo "make bench-quick     every benchmark against its limit (raw ffmpeg, nginx-rtmp, direct worker calls), < 5 min"
	@echo "make bench           the same with longer inputs and finer ramps (~20 min); results in bench/results/"
	@echo "make scale-demo      (root) Redis + S3, 2 gateways, 2 transcoders, 1 AI worker, each in its own network"
	@echo "                     namespace; prints the publish and playback URLs; Ctrl-C tears it all down"

system-deps:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && command -v redis-server >/dev/null || { \
	  echo "installing ffmpeg and redis-server with apt-get"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg redis-server >/dev/null; }

node_modules/.mediagate-installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: system-deps node_modules/.mediagate-installed

# nginx with Debian's RTMP module: the reference server the benchmarks compare against, and the
# real RTMP receiver the restream tests (test/integration/outputs) send to. The tests fail, never
# skip, without it (test/helpers/nginx-rtmp.ts).
nginx-rtmp:
	@[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] && PATH="$$PATH:/usr/sbin:/sbin" command -v nginx >/dev/null || { \
	  echo "installing nginx-light and libnginx-mod-rtmp with apt-get (RTMP reference server and test receiver)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx-light libnginx-mod-rtmp >/dev/null; }

# Debian's Chromium: the browser the WebRTC (WHIP/WHEP) and console tests drive with playwright-core
# (executablePath /usr/bin/chromium; playwright never downloads a browser of its own).
chromium:
	@[ -x /usr/bin/chromium ] || { \
	  echo "installing chromium with apt-get (browser tests of WHIP/WHEP and the console)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

bench-deps: deps nginx-rtmp

# Starts a local redis-server on 127.0.0.1:$(REDIS_PORT) unless one already answers there, with AOF
# persistence (appendonly yes, appendfsync everysec) in data/redis: the gateway's state (segment
# index, ledger, keys, queues) lives in Redis and must survive a Redis restart. A Redis already
# running without persistence gets a warning.
redis: system-deps
	@if (exec 3<>/dev/tcp/127.0.0.1/$(REDIS_PORT)) 2>/dev/null; then echo "redis already running on 127.0.0.1:$(REDIS_PORT)"; \
	  if command -v redis-cli >/dev/null && redis-cli -p $(REDIS_PORT) config get appendonly 2>/dev/null | grep -qx no; then \
	    echo "warning: that redis runs without AOF persistence (appendonly no): a restart loses the gateway's state (accounts, segment index, queues)"; fi; \
	else \
	  mkdir -p data/redis && redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --dir $(CURDIR)/data/redis \
	    --appendonly yes --appendfsync everysec --daemonize yes --logfile $(CURDIR)/data/redis/redis.log && \
	  echo "started redis-server on 127.0.0.1:$(REDIS_PORT) with AOF persistence (data in data/redis)"; fi

run: deps redis
	$(NODE_RUN) cmd/gateway.ts

run-transcoder: deps
	$(NODE_RUN) cmd/transcoder.ts

# The reference AI worker: ai-runner API on 127.0.0.1:8000 (cmd/ai-worker.ts --help for settings),
# registered with the gateway of `make run` at its default address (http.host 127.0.0.1, http.port
# 9935) unless MEDIAGATE_AI_WORKER_GATEWAY_URL is set (set it empty to not register).
run-ai-worker: deps
	MEDIAGATE_AI_WORKER_GATEWAY_URL="$${MEDIAGATE_AI_WORKER_GATEWAY_URL-http://127.0.0.1:9935}" $(NODE_RUN) cmd/ai-worker.ts

typecheck: node_modules/.mediagate-installed
	npx tsc --noEmit -p tsconfig.json

# The import rules of docs/architecture.md ("Boundaries"): feature folders do not import each
# other, each library stays in its folder, no cycles. Prints each broken rule and fails.
check-boundaries: node_modules/.mediagate-installed
	npx depcruise --config .dependency-cruiser.cjs src cmd

test: deps nginx-rtmp chromium check-boundaries typecheck
	node --import tsx --test --test-concurrency=1 --test-reporter=spec $(TEST_FILES)

test-unit: deps
	node --import tsx --test $(shell find test/unit -name '*.test.ts' | sort)

test-integration: deps nginx-rtmp chromium
	node --import tsx --test --test-concurrency=1 $(shell find test/integration -name '*.test.ts' | sort)

bench: bench-deps
	$(NODE_RUN) bench/run.ts

bench-quick: bench-deps
	$(NODE_RUN) bench/run.ts --quick

# A multi-host deployment on this machine (docs/deploy.md, "Trying it on one machine"): one network
# namespace per host on a bridge, the harness test/integration/cluster/ runs. Needs root.
scale-demo: deps
	$(NODE_RUN) scripts/scale-demo.ts

clean:
	rm -rf data
