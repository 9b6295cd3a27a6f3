# batchcraft, CPU image: `batchcraft serve` by default; `batchcraft curate` (Spark local mode,
# Java 17) and `batchcraft plan` run from the same image.
#   docker build -t batchcraft:cpu .
#   docker run -p 50051:50051 -v /data/curated:/data/news:ro -v /data/state:/state batchcraft:cpu \
#       serve /data/news --name news --host 0.0.0.0 --port 50051 --checkpoint-dir /state
# GPU variant: see README ("Deployment"): base image nvidia/cuda:12.4.1-runtime-ubuntu22.04,
# torch from the CUDA index, and the `gpu` extra (faiss-gpu) instead of `cpu`.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /opt/batchcraft
# The CPU build of torch first: a bare `torch` requirement would pull the multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[cpu]'

RUN useradd --create-home --uid 10001 batchcraft && mkdir -p /state && chown batchcraft /state
USER batchcraft
EXPOSE 50051 9100
# grpc.health.v1, the same check the Kubernetes probes use
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD python -c "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; s = g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')).Check(h.HealthCheckRequest(service=''), timeout=2); sys.exit(s.status != h.HealthCheckResponse.SERVING)"
ENTRYPOINT ["batchcraft"]
CMD ["serve", "--help"]
