#!/usr/bin/env bash
# Install the real DICOM peers used by the interop tests and benchmarks (dcmtk, Orthanc).
# Idempotent: does nothing but print versions when storescp, echoscu and Orthanc exist.
# Debian/Ubuntu only (apt-get); uses sudo only when not root and sudo exists.
set -euo pipefail

# Orthanc installs into /usr/sbin, which a normal user's PATH may lack.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
for bin in storescp echoscu storescu dcmdump Orthanc; do
    have "$bin" || missing+=("$bin")
done

if ((${#missing[@]})); then
    echo "install-peers: missing: ${missing[*]}"
    if ! have apt-get; then
        echo "install-peers: apt-get not found; install dcmtk and Orthanc by hand" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if have sudo; then
            SUDO=(sudo)
        else
            echo "install-peers: not root and no sudo; run as root: apt-get install -y dcmtk orthanc" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    ${SUDO[@]+"${SUDO[@]}"} apt-get update
    ${SUDO[@]+"${SUDO[@]}"} apt-get install -y --no-install-recommends dcmtk orthanc
    # The package starts a system Orthanc service; tests run their own instances.
fi

status=0
for bin in storescp echoscu storescu dcmdump Orthanc; do
    if ! have "$bin"; then
        echo "install-peers: $bin still missing" >&2
        status=1
    fi
done
if have storescp; then storescp --version | sed -n 1p | tr -d '$'; fi
if have Orthanc; then Orthanc --version | sed -n 1p; fi
PY="${PYTHON:-python3}"
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
"$PY" -c 'import pynetdicom; print("pynetdicom", pynetdicom.__version__)' 2>/dev/null \
    || echo "pynetdicom: not installed in $PY (pip install pynetdicom)"
exit "$status"
