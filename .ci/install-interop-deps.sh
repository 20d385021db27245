#!/usr/bin/env bash
# Install the real peers the interop tests (tests/interop/) start on loopback:
#   haproxy                     -> send-proxy / accept-proxy, proxy-v2-options, CRC32C check
#   nginx + libnginx-mod-stream -> stream `proxy_protocol on;` and `listen ... proxy_protocol`
#                                  (Debian builds the stream module as a dynamic module, so the
#                                  test config load_module's ngx_stream_module.so itself)
#   openssl                     -> throwaway CA, server and client certificates for the TLS tests
# Non-interactive and idempotent: packages already present are not reinstalled, and the
# daemons are never started by the package scripts (the tests start their own copies with
# configs in a temporary directory, listening on 127.0.0.1 / ::1 only).
set -euo pipefail

packages=(haproxy nginx libnginx-mod-stream openssl)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-interop-deps: all present (${packages[*]})"
else
    if [ "$(id -u)" -ne 0 ]; then
        sudo_cmd=(sudo)
    else
        sudo_cmd=()
    fi
    # Stop the maintainer scripts from starting the system haproxy/nginx services (nginx's
    # default site would listen on 0.0.0.0:80). Only add the policy if none exists, and
    # remove only the one we added.
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
        "${sudo_cmd[@]}" chmod 755 "$policy"
        added_policy=1
    fi
    trap 'if [ "$added_policy" -eq 1 ]; then "${sudo_cmd[@]}" rm -f "$policy"; fi' EXIT
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get -o Acquire::Retries=3 update -q
    "${sudo_cmd[@]}" apt-get -o Acquire::Retries=3 install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}"
fi

# sed reads all of haproxy's output: `head` would exit early, and under pipefail the SIGPIPE
# haproxy then gets fails the script (exit 141 in CI).
haproxy -v | sed -n 1p
nginx -v 2>&1
openssl version
