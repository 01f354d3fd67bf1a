#!/usr/bin/env bash
# Prepares a Debian host for the runc sandbox and the web app's build and
# browser tests: installs what is missing from Debian's packages and checks
# what the kernel must offer. Safe to run again.
set -euo pipefail

need=()
command -v runc >/dev/null 2>&1 || need+=(runc)
[ -x /usr/bin/python3 ] || need+=(python3)
python3_ok() { /usr/bin/python3 -c 'import json, ssl, sqlite3' >/dev/null 2>&1; }
[ -x /usr/bin/python3 ] && ! python3_ok && need+=(python3)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The web app's browser tests (web/ui/e2e) drive Debian's chromium.
[ -x /usr/bin/chromium ] || need+=(chromium)
# The web app is built with Node.js and npm (web/ui, Taskfile ui:build).
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: missing Debian packages: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
		exit 1
	fi
	echo "setup: installing ${need[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq "${need[@]}" >/tmp/integr8scode-apt.log 2>&1; then
		apt-get update -qq >>/tmp/integr8scode-apt.log 2>&1 || true
		if ! apt-get install -y -qq "${need[@]}" >>/tmp/integr8scode-apt.log 2>&1; then
			echo "setup: apt-get install ${need[*]} failed; see /tmp/integr8scode-apt.log:" >&2
			tail -20 /tmp/integr8scode-apt.log >&2
			exit 1
		fi
	fi
fi

fail=0
if [ "$(id -u)" != 0 ]; then
	echo "setup: the runc sandbox needs root (cgroups and namespaces); run as root" >&2
	fail=1
fi
for c in memory cpu cpuacct pids; do
	if [ ! -d "/sys/fs/cgroup/$c" ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
		echo "setup: cgroup controller $c is not mounted" >&2
		fail=1
	fi
done
exit $fail
