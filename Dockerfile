# ilsvrc as a GPU training job: CUDA + cuDNN runtime, Node 22, onnxruntime-node with its CUDA
# provider. Build:  docker build -t ilsvrc .
# Run:    docker run --gpus all -v data:/data -v runs:/runs ilsvrc train vgg-d --data /data --out /runs/x --resume
#
# CUDA_IMAGE picks the CUDA/cuDNN base; the ldd guard below fails the build when the provider that
# npm downloads links a CUDA or cuDNN major other than the base's (then pick the matching base,
# e.g. --build-arg CUDA_IMAGE=nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04).
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS node

FROM ${CUDA_IMAGE} AS build
# The C compiler and libjpeg headers build the native JPEG path (scripts/build-native).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libjpeg-turbo8-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/include/node /usr/local/include/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# The package's preinstall (its CUDA opt-in for installs elsewhere; with the flag below it does nothing).
COPY install ./install
# .npmrc skips onnxruntime-node's CUDA download; the flag here makes it fetch the CUDA provider from NuGet.
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --ignore-scripts=false --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
COPY native ./native
RUN npm run build && test -f build/native/jpeg_view.node && npm prune --omit=dev --no-audit --no-fund \
 && rm -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_tensorrt.so \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v6/darwin node_modules/onnxruntime-node/bin/napi-v6/win32 \
      node_modules/onnxruntime-node/bin/napi-v6/linux/arm64

FROM ${CUDA_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends libjpeg-turbo8 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build ./build
COPY --from=build /app/scripts/ldd-guard.sh ./scripts/ldd-guard.sh
# Fails the build if the loader cannot resolve a library the CUDA provider needs (CUDA, cuDNN).
RUN ["/app/scripts/ldd-guard.sh", "/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"]
RUN chmod 755 /app/dist/src/cli/main.js \
 && ln -s /app/dist/src/cli/main.js /usr/local/bin/ilsvrc \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin ilsvrc \
 && mkdir -p /data /runs \
 && chown ilsvrc:ilsvrc /data /runs
ENV NODE_ENV=production
USER ilsvrc
WORKDIR /runs
VOLUME ["/data", "/runs"]
ENTRYPOINT ["ilsvrc"]
CMD ["--help"]
