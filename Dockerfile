# The oracle node / worker image. GPU hosts build with --build-arg ONNXRUNTIME=onnxruntime-gpu.
FROM python:3.11-slim-bookworm

ARG ONNXRUNTIME=onnxruntime
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
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
