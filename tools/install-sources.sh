#!/usr/bin/env bash
# Install the Debian packages the embedded data sets are built from (idempotent), and, where
# this user may install packages, Chromium for the book's browser test (optional: without it
# that one test is skipped). npm packages are fetched by the data builder itself (`npm pack`).
set -euo pipefail
pkgs=(openclipart-png openclipart-svg r-cran-dslabs dataset-fashion-mnist wordnet-base)
optional=(chromium)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
can_install() { [ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${optional[@]}"; do
  installed "$p" || command -v "$p" >/dev/null && continue
  if can_install; then missing+=("$p"); else echo "optional: $p is not installed (the book's browser test will be skipped)"; fi
done
[ ${#missing[@]} -eq 0 ] && { echo "data sources: all Debian packages present"; exit 0; }
cmd=(apt-get install -y -q --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
  if can_install; then cmd=(sudo "${cmd[@]}"); else
    echo "missing Debian packages: ${missing[*]}"; echo "install them with: sudo ${cmd[*]}"; exit 1; fi
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${cmd[@]}" >/dev/null || { "${cmd[0]}" update -q >/dev/null; "${cmd[@]}" >/dev/null; }
