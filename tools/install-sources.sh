#!/usr/bin/env bash
# Install the Debian packages the embedded data sets are built from (idempotent).
# npm packages are fetched by the data builder itself (`npm pack`).
set -euo pipefail
pkgs=(openclipart-png openclipart-svg r-cran-dslabs dataset-fashion-mnist wordnet-base)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "data sources: all Debian packages present"; exit 0; }
cmd=(apt-get install -y -q --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then cmd=(sudo "${cmd[@]}"); else
    echo "missing Debian packages: ${missing[*]}"; echo "install them with: sudo ${cmd[*]}"; exit 1; fi
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${cmd[@]}" >/dev/null || { "${cmd[0]}" update -q >/dev/null; "${cmd[@]}" >/dev/null; }
