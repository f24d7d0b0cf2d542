# syntax=docker/dockerfile:1

# Build: a static binary (the SQLite driver is pure Go, no cgo).
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ledger ./cmd/ledger

# Run: a small image with a shell tool for the health check, as a non-root
# user owning only the data folder.
FROM alpine:3.20
RUN addgroup -S -g 10001 ledger \
    && adduser -S -D -H -u 10001 -G ledger ledger \
    && mkdir -p /data \
    && chown ledger:ledger /data
COPY --from=build /out/ledger /usr/local/bin/ledger
USER ledger:ledger
ENV LEDGER_DATA=/data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD wget -q -O /dev/null http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["ledger"]
CMD ["serve"]
