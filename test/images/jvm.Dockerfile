# Test image spotsnap-jvm:dev: Debian's OpenJDK 21 and the JVM task shapes of test/tasks, compiled with javac.
# Built by docker/build-images.sh with test/tasks as its context; spotsnap is taken from spotsnap:dev as a
# user's image takes it, last, so that a new agent rebuilds only that layer.
ARG BASE_IMAGE=spotsnap-base:trixie
FROM ${BASE_IMAGE}
RUN set -eux; apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-21-jdk-headless util-linux gzip; \
    rm -rf /var/lib/apt/lists/*; java -version
COPY HeapTask.java PoolTask.java /opt/spotsnap-tests/java/
RUN javac -d /opt/spotsnap-tests/java /opt/spotsnap-tests/java/*.java && chmod -R a+rX /opt/spotsnap-tests
COPY --from=spotsnap:dev /opt/spotsnap /opt/spotsnap
WORKDIR /work
ENTRYPOINT ["/opt/spotsnap/bin/spotsnap", "run", "--"]
