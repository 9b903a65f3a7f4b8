"""Entry points of the fake distribution launch_fixture_pkg (tests/launcher/test_launcher.py)."""
import sys


def main():
    print(f"hello from {sys.argv[0]} args={sys.argv[1:]}", flush=True)
    return 4


class App:
    @staticmethod
    def run():
        return 0
