#!/usr/bin/env bash
# install-deps.sh: installs the Debian packages hpool builds and tests with, and any named as arguments, if missing.
#   install-deps.sh [PACKAGE...]
set -euo pipefail

packages=(gcc g++ make cmake pkg-config openmpi-bin libopenmpi-dev libpcre2-dev libcurl4-openssl-dev ca-certificates python3
          python3.11-doc # real HTML for the metatags tests
          groff-base     # groff, which tests/test_man.sh renders the man pages with
          procps         # pgrep, pkill and ps, with which tests/test_stop_resume.sh finds and kills a run's processes
          "$@")

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_prefix=()
  [ "$(id -u)" -eq 0 ] || sudo_prefix=(sudo)
  "${sudo_prefix[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_prefix[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
