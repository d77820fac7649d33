#!/bin/sh
# Installs what Outpost needs from Debian 12's packages (idempotent; skips apt when all present).
# Usage: scripts/install-deps.sh [build|test|bench]
set -eu
BUILD_PKGS="build-essential cmake pkg-config ccache libuv1-dev libssl-dev libcrypt-dev libldap-dev node-llhttp libc-ares-dev libcurl4-openssl-dev
 libgtest-dev libgmock-dev libbenchmark-dev libtomlplusplus-dev libspdlog-dev libcli11-dev"
TEST_PKGS="curl nginx-light chromium libnss3-tools python3 iproute2 util-linux openssl clang libclang-rt-14-dev procps
 nsd knot-dnsutils dnsutils prometheus bind9-utils unbound python3-websockets apache2-utils haproxy systemd logrotate
 busybox isc-dhcp-client docker.io docker-compose debootstrap iptables
 snmp snmpd chrony python3-ntplib slapd ldap-utils vsftpd"
# The benchmark peers and tools (bench/run): Squid, nginx, Unbound, NSD, wrk, dnsperf, gnuplot.
BENCH_PKGS="curl nginx-light squid-openssl unbound nsd wrk dnsperf gnuplot-nox python3 iproute2 util-linux procps"
PKGS="$BUILD_PKGS"
[ "${1:-build}" = test ] && PKGS="$PKGS $TEST_PKGS"
[ "${1:-build}" = bench ] && PKGS="$PKGS $BENCH_PKGS"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
# Keep Debian from starting packaged services (nginx would take port 80) during install.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
