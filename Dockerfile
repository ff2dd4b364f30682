# clonewatch: the exporter and the load generator in one small image.
#   docker build -t clonewatch .
#   docker run clonewatch clonewatch-exporter --help      |  docker run clonewatch clonewatch-loadgen --help
# The Debian packages are the ones scripts/setup.sh installs and CI tests against (Debian 12).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY loadgen ./loadgen
RUN python -m venv /opt/clonewatch \
 && /opt/clonewatch/bin/pip install --no-cache-dir . \
 && find /opt/clonewatch -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm
# Ceph's Python bindings (python3-rados, python3-rbd) for the RBD backend, rbd (ceph-common) for
# loadgen and the cli client; qemu-img/qemu-io (qemu-utils) for qcow2.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ceph-common=16.2.15* python3-rados=16.2.15* python3-rbd=16.2.15* \
      qemu-utils=1:7.2* \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/clonewatch /opt/clonewatch
# Debian's bindings are built for CPython 3.11, as this image's Python is: link them into the venv.
RUN ln -s /usr/lib/python3/dist-packages/rados.cpython-311-x86_64-linux-gnu.so \
          /usr/lib/python3/dist-packages/rbd.cpython-311-x86_64-linux-gnu.so \
          /opt/clonewatch/lib/python3.11/site-packages/
ENV PATH=/opt/clonewatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:0
EXPOSE 9753 9754
CMD ["clonewatch-exporter"]
