# Ferry's own image (API or worker), for docker-compose.yml. Needs registry access.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends docker.io git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["ferry", "--help"]
