"""Dummy node for tests/launcher/test_launcher.py: prints its argv and environment, then a tick
every 50 ms until SIGINT/SIGTERM, then 'bye' and exit 0.

--spawn-grandchild: also start a child process that ignores SIGINT (to check the
launcher leaves no orphans behind).
"""
import os
import signal
import subprocess
import sys
import threading

stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
signal.signal(signal.SIGTERM, lambda *_: stop.set())

print(f"up pid={os.getpid()} argv={sys.argv[1:]}")
print(f"env ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID')} "
      f"SITEBOT_FIXTURE={os.environ.get('SITEBOT_FIXTURE')}")
print("to stderr", file=sys.stderr)
if "--spawn-grandchild" in sys.argv:
    child = subprocess.Popen([sys.executable, "-c", (
        "import os, signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "print(f'grandchild pid={os.getpid()}', flush=True); time.sleep(60)")])
i = 0
while not stop.wait(0.05):
    print(f"tick {i}")
    i += 1
print("bye")
