# The oracle node / worker image. GPU hosts build with --build-arg ONNXRUNTIME=onnxruntime-gpu.
#
# Node.js comes from the official image, not Debian's package (bookworm ships Node 18): the
# pinned npm toolchain (solc-js, which compiles the contracts at build time) requires the
# version package-lock.json names in its "engines" (>= 20; tests/unit/test_compose.py checks).
ARG NODE_VERSION=20
FROM node:${NODE_VERSION}-bookworm-slim AS node

FROM python:3.11-slim-bookworm

ARG ONNXRUNTIME=onnxruntime
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && node --version

WORKDIR /app
# The runtime lock only (requirements.lock): what the node and the workers import, no test,
# lint, training or benchmark tools (those are in requirements-dev.lock).
COPY requirements.lock pyproject.toml README.md ./
RUN pip install -r requirements.lock \
 && if [ "$ONNXRUNTIME" != "onnxruntime" ]; then pip uninstall -y onnxruntime && pip install "$ONNXRUNTIME"; fi
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY oracle ./oracle
COPY workers ./workers
COPY migrations ./migrations
COPY solidity/src ./solidity/src
COPY models ./models
COPY alembic.ini ./
RUN pip install --no-deps -e . && python -m oracle.chain.compile

ENTRYPOINT ["oracle"]
CMD ["--help"]
