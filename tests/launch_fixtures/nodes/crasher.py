"""Dummy node for tests/launcher/test_launcher.py: prints a line and exits with code 3."""
import sys

print("crashing now", flush=True)
sys.exit(3)
