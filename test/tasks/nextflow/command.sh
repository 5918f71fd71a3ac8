#!/bin/bash -ue
# Test task: the process script of the Nextflow-style task (what a user writes in a process block).
gzip -dc sample.tsv.gz | python3 /opt/spotsnap-tests/nextflow/summarise.py summary.tsv 40 0.2
