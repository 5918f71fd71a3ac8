#!/usr/bin/env python3
"""Test task: a worker thread (not the main one) forks a shell loop, as a JVM or a thread pool would; the main
thread waits for it. The shell's processes belong to the worker thread, not to the process's main thread.

usage: thread-fork-task.py TICKS TICK_SECONDS
"""
import os
import subprocess
import sys
import threading

ticks, tick_seconds = int(sys.argv[1]), sys.argv[2]
own = open(f"/proc/{os.getpid()}/cmdline").read().split("\0")
print(f"task started: /proc/{{getpid()}}/cmdline is this task's own: {own[1:2] == [sys.argv[0]]}", flush=True)
result = {}


def work():
    result["code"] = subprocess.call(["sh", "-c", f'i=1; while [ $i -le {ticks} ]; do echo "tick $i"; i=$((i+1)); sleep {tick_seconds}; done'])


worker = threading.Thread(target=work)
worker.start()
worker.join()
print(f"ticks done: shell exited {result['code']}; /proc/self matches: {open(f'/proc/{os.getpid()}/stat').read().split()[0] == str(os.getpid())}", flush=True)
