# Test image spotsnap-zdtm:dev: CRIU's own zdtm static tests (test/zdtm/tests.txt), built from the criu source
# package of Debian's archive, and the batch runner of test/zdtm. Built by docker/build-images.sh with test/zdtm as
# its context; spotsnap is taken from spotsnap:dev last, so that a new agent rebuilds only that layer.
ARG BASE_IMAGE=spotsnap-base:trixie
FROM ${BASE_IMAGE}
RUN set -eux; apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc make libc6-dev libaio-dev util-linux xz-utils; \
    rm -rf /var/lib/apt/lists/*

# The source of the newest criu in the base's release and the next one (forky), the release the task image takes
# CRIU 4.2 from: only its orig tarball (test/zdtm is there), fetched and checked against its hash by apt itself.
# check-valid-until=no: the next release's index may be past its date on a mirror.
RUN set -eux; \
    mirror=$(grep -hoE '^(URIs:|deb)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | awk '{print $2}' | grep -E '/debian/?$' | head -n1); \
    suite=$(. /etc/os-release && echo "$VERSION_CODENAME"); \
    printf 'deb-src %s %s main\ndeb-src [check-valid-until=no] %s forky main\n' "${mirror%/}" "$suite" "${mirror%/}" > /etc/apt/sources.list.d/zdtm-src.list; \
    apt-get update; \
    orig=$(apt-get source --print-uris criu | grep -E "\.orig\.tar\.[a-z0-9]+' " | head -n1); \
    [ -n "$orig" ]; \
    set -- $orig; url=$(echo "$1" | tr -d "'"); \
    /usr/lib/apt/apt-helper download-file "$url" "/tmp/$2" "$4"; \
    mkdir -p /opt/criu-src; tar -C /opt/criu-src --strip-components=1 -xf "/tmp/$2"; \
    rm -rf "/tmp/$2" /var/lib/apt/lists/* /etc/apt/sources.list.d/zdtm-src.list; \
    ls /opt/criu-src/test/zdtm/lib/test.c
RUN make -C /opt/criu-src/test/zdtm/lib -j"$(nproc)"

# The tests named in tests.txt (those not skipped), each built by its own rule in CRIU's static Makefile.
COPY tests.txt /opt/zdtm/tests.txt
RUN set -eux; \
    tests=$(grep -vE '^[[:space:]]*(#|$)' /opt/zdtm/tests.txt | awk -F ' [|] ' '$2 != "skip" {print $1}'); \
    make -C /opt/criu-src/test/zdtm/static -j"$(nproc)" $tests; \
    mkdir -p /opt/zdtm/static; for t in $tests; do cp "/opt/criu-src/test/zdtm/static/$t" /opt/zdtm/static/; done
COPY run-batch.sh /opt/zdtm/run-batch.sh
RUN chmod -R a+rX /opt/zdtm && chmod a+x /opt/zdtm/run-batch.sh
COPY --from=spotsnap:dev /opt/spotsnap /opt/spotsnap
WORKDIR /work
ENTRYPOINT ["/opt/spotsnap/bin/spotsnap", "run", "--"]
