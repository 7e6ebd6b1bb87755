# syntax=docker/dockerfile:1
# Build a static keyline binary (pure Go: SQLite is compiled in without cgo).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/keyline ./cmd/keyline

# Distroless static: no shell, runs as nonroot (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keyline /usr/local/bin/keyline
ENV KEYLINE_ADDR=:8080 KEYLINE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/keyline"]
CMD ["serve"]
