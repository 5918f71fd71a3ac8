# Test image spotsnap-py:dev: the task shapes of test/tasks on Python's full standard library (sqlite3 and
# multiprocessing, which python3-minimal lacks), with a 200 MiB seeded input file that comes with the image.
# Built by docker/build-images.sh with test/tasks as its context; spotsnap is taken from spotsnap:dev as a
# user's image takes it, last, so that a new agent rebuilds only that layer.
ARG BASE_IMAGE=spotsnap-base:trixie
FROM ${BASE_IMAGE}
RUN set -eux; apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 util-linux gzip; \
    rm -rf /var/lib/apt/lists/*; python3 -c 'import sqlite3, multiprocessing.shared_memory'
COPY make-input.py gen-records.py /opt/spotsnap-tests/
RUN set -eux; mkdir -p /opt/spotsnap-tests/data /opt/spotsnap-tests/nextflow/remote; \
    python3 /opt/spotsnap-tests/make-input.py /opt/spotsnap-tests/data/input.bin 200; \
    python3 /opt/spotsnap-tests/gen-records.py 200000 0 3>/dev/null | gzip -n > /opt/spotsnap-tests/nextflow/remote/sample.tsv.gz
COPY . /opt/spotsnap-tests/
RUN set -eux; cd /opt/spotsnap-tests/nextflow; cp command.run remote/.command.run; cp command.sh remote/.command.sh; \
    chmod -R a+rX /opt/spotsnap-tests
COPY --from=spotsnap:dev /opt/spotsnap /opt/spotsnap
WORKDIR /work
ENTRYPOINT ["/opt/spotsnap/bin/spotsnap", "run", "--"]
