# S3 emulator for machines that cannot pull LocalStack: Debian 13's moto_server, the same path-style API on port 4566.
ARG BASE_IMAGE=spotsnap-base:trixie
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-moto python3-flask python3-flask-cors \
 && rm -rf /var/lib/apt/lists/*
# Listen on loopback only; run with --network host. Another port: append "-p PORT".
ENTRYPOINT ["moto_server", "-H", "127.0.0.1"]
CMD ["-p", "4566"]
