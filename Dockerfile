# syntax=docker/dockerfile:1
#
# Keyline as a small, static, non-root image.
#   docker build -t keyline --build-arg VERSION=$(git describe --always) .
#   docker run -p 8080:8080 -e KEYLINE_BASE_URL=https://keyline.example.com keyline
# `keyline migrate` in the same image is the init step of a deployment
# (deploy/kubernetes/deployment.yaml).

# ---- build: a static binary (pure Go: SQLite is compiled in without cgo).
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
    -o /out/keyline ./cmd/keyline
# The data dir of embedded (SQLite) mode, owned by the runtime user; copied
# below because the final image has no shell to create it.
RUN mkdir -p /out/data && chown 65532:65532 /out/data && chmod 0700 /out/data

# ---- run: distroless static has CA certificates and tzdata, no shell, no
# package manager; the :nonroot tag runs as uid/gid 65532. Debian 13: the
# debian12 images stopped receiving updates in September 2026.
FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=build /out/keyline /usr/local/bin/keyline
COPY --from=build --chown=65532:65532 /out/data /data
ENV KEYLINE_ADDR=:8080 KEYLINE_DATA_DIR=/data
# Only embedded mode writes here (the SQLite file and its secret key); with
# PostgreSQL the root filesystem can be read-only and nothing is mounted.
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
# There is no curl in the image: the binary probes its own /healthz
# (liveness, no dependencies) on KEYLINE_ADDR with a 3 s timeout.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/keyline", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/keyline"]
CMD ["serve"]
