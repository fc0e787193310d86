#!/bin/sh
# Installs every Debian package diffad needs to build, run and test, when missing.
# Idempotent; needs root (or sudo) only when something is missing. No pip, no downloads.
set -eu
PKGS="build-essential pkg-config libdnnl-dev libopenmpi-dev openmpi-bin libstb-dev libomp-dev python3 python3-torch python3-numpy python3-sklearn python3-scipy python3-onnx chromium"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
  echo "setup: all packages present"
fi
