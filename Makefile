# The shop's commands. `make run` runs the whole shop locally; `make test` runs the unit,
# handler and store tests; `make e2e` runs the end-to-end suite in containers.

SERVICES := gateway order payment webapp
MODULES  := platform $(SERVICES) integration deploy
GO       ?= go
# Every Go package of the workspace but the end-to-end suite.
UNIT_PKGS := $(foreach m,platform $(SERVICES),./$(m)/...)

.PHONY: run build test e2e lint clean keycloak certs up down k8s-check images

## run: the whole shop on embedded defaults (Keycloak fetched on first use); Ctrl-C stops it
run: build certs
	@CGO_ENABLED=0 $(GO) build -o bin/devrun ./platform/cmd/devrun
	@exec bin/devrun

## build: static binaries of every service into bin/
build:
	@mkdir -p bin
	@for s in $(SERVICES); do CGO_ENABLED=0 $(GO) build -trimpath -o bin/$$s ./$$s/cmd/$$s || exit 1; done
	@echo "built bin/{$(shell echo $(SERVICES) | tr ' ' ',')}"

## certs: dev CA and the services' mTLS certificates into certs/ (kept while valid; renewed near expiry)
certs:
	@CGO_ENABLED=0 $(GO) build -o bin/certs ./platform/cmd/certs
	@bin/certs -dir certs

## test: unit, handler and store contract tests, and the Kubernetes manifests' check (needs nothing running)
test: k8s-check
	$(GO) test -count=1 -race $(UNIT_PKGS)

## k8s-check: render deploy/'s overlays and prove them offline (schemas, Pod Security, probes, env, NetworkPolicies)
k8s-check:
	$(GO) test -count=1 ./deploy/...

## images: the services' images and the prebuilt Keycloak, tagged $(REGISTRY)shop/<name>:$(IMAGE_TAG) (see deploy/README.md to push)
CONTAINER ?= docker
REGISTRY  ?=
IMAGE_TAG ?= dev
images: build
	@for s in $(SERVICES); do $(CONTAINER) build -f $$s/Dockerfile -t $(REGISTRY)shop/$$s:$(IMAGE_TAG) . || exit 1; done
	$(CONTAINER) build --build-arg KEYCLOAK_VERSION=$$(cat keycloak/VERSION) -t $(REGISTRY)shop/keycloak:$$(cat keycloak/VERSION) deploy/keycloak

## e2e: end-to-end tests with testcontainers (needs a Docker API: Docker or Podman, see README)
e2e: build certs
	$(GO) test -count=1 -p 1 -timeout 45m -v ./integration/...

## lint: gofmt and go vet on every module
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(foreach m,$(MODULES),./$(m)/...)
	@# Every service's Fiber app comes from platform/server.New, which makes Fiber's strings
	@# copies (Immutable): a view into a reused request buffer kept past a handler once
	@# crashed every service. Only the bare-Fiber benchmark baseline may build its own.
	@out=$$(grep -rn --include='*.go' 'fiber\.New(' $(MODULES) | grep -v '_test\.go:' | grep -v '^platform/server/' | grep -v '^gateway/bench/'); \
	if [ -n "$$out" ]; then echo "build Fiber apps with platform/server.New, not fiber.New:"; echo "$$out"; exit 1; fi

## bench: front doors (gateway, bare Fiber, HAProxy, Spring Cloud Gateway), checkout and idle footprint on loopback; writes docs/benchmarks.md and .png (~15 min)
.PHONY: bench
bench: build
	bash gateway/bench/run.sh

## keycloak: only Keycloak with the shop realm, on port 8180
keycloak:
	keycloak/run.sh

## up / down: the same stack in containers with docker-compose.yml (COMPOSE=podman-compose works too)
COMPOSE ?= docker compose
up: build certs
	@# The images run as a non-root uid that does not own the host's files: the dev keys
	@# must be readable by others to be mounted. Never do this with real keys.
	@chmod 0644 certs/*-key.pem
	$(COMPOSE) up -d --build
	@echo "shop: http://localhost:8080  gateway: http://localhost:8000  keycloak: http://localhost:8180"
down:
	$(COMPOSE) down -v

## clean: remove build output, local data and downloads
clean:
	rm -rf bin data certs .cache integration/artifacts
