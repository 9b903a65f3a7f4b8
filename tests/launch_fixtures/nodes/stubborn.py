"""Dummy node for tests/launcher/test_launcher.py: ignores SIGINT and SIGTERM (only SIGKILL ends it)."""
import os
import signal
import time

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(f"stubborn pid={os.getpid()}", flush=True)
while True:
    time.sleep(1)
