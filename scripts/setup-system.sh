#!/usr/bin/env bash
# System packages the tests need, installed idempotently (Debian 12 / bookworm):
#   chromium       — browser tests, and its SwiftShader Vulkan driver for Node WebGPU
#   libvulkan1     — the Vulkan loader Dawn (npm `webgpu`) opens
#   mesa-vulkan-drivers from bookworm-backports (Mesa 25) — lavapipe: ~5× faster than
#                    SwiftShader and has shader-f16. Debian 12's own Mesa 22 does not work with Dawn.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
ldconfig -p | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
lavapipe_ok() {
  [ -f /usr/share/vulkan/icd.d/lvp_icd.json ] &&
    dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -qE '^(2[5-9]|[3-9][0-9])\.'
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    [ ${#need[@]} -eq 0 ] && lavapipe_ok && exit 0
    echo "setup-system: missing ${need[*]} (and/or Mesa 25 lavapipe); run as root to install" >&2
    exit 1
  fi
fi

if [ ${#need[@]} -gt 0 ] || ! lavapipe_ok; then
  if ! lavapipe_ok && [ ! -f /etc/apt/sources.list.d/bookworm-backports.list ] &&
    grep -q bookworm /etc/os-release && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  $SUDO apt-get update -qq
  export DEBIAN_FRONTEND=noninteractive
  if [ ${#need[@]} -gt 0 ]; then $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; fi
  if ! lavapipe_ok; then
    # Optional: without it the tests run on SwiftShader (slower, no f16 paths).
    $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null ||
      echo "setup-system: Mesa 25 lavapipe unavailable; using SwiftShader" >&2
  fi
fi
echo "setup-system: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), vulkan loader ok, lavapipe: $(lavapipe_ok && echo Mesa 25 || echo absent)"
