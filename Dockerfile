# syntax=docker/dockerfile:1
# One image, three uses (docs/packaging.md): Velero's plugin init container (the default command copies
# the plugin into /target), the companion sidecar and the restore init container.
# Build for both architectures with:
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/velero-plugin-victoria:TAG --push .
#
# Every stage runs on the target platform: the SEA blob holds a V8 code cache, which only the
# Node binary of the same architecture and version can produce and use.

# The two C++ runtime libraries shipped beside the executable. Bullseye's need glibc >= 2.18 only;
# newer ones need 2.36, more than Velero's jammy-based images (v1.17.1 and older) have.
FROM debian:bullseye-slim AS libs
RUN mkdir /out && cp -L /usr/lib/"$(uname -m)"-linux-gnu/libstdc++.so.6 /lib/"$(uname -m)"-linux-gnu/libgcc_s.so.1 /out/

# patchelf >= 0.18 is required (0.14 corrupts SEA binaries); trixie ships 0.18.
FROM node:22-trixie-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends patchelf && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY proto proto
COPY src src
COPY scripts/build.sh scripts/build.sh
COPY --from=libs /out /libs
RUN SEA_NODE="$(command -v node)" PATCHELF=patchelf SEA_LIBDIR=/libs bash scripts/build.sh

# glibc (the companion and restore roles run in it), no shell, non-root.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /src/dist/velero-plugin-victoria /plugins/velero-plugin-victoria
COPY --from=build /src/dist/lib/ /plugins/lib/
USER 65532:65532
ENTRYPOINT ["/plugins/velero-plugin-victoria"]
CMD ["install-plugin", "--target", "/target"]
