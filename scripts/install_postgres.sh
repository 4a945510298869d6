#!/usr/bin/env bash
# Install the PostgreSQL server binaries for the tests (`make test`), unless they are there.
#
# The tests start a throw-away server of their own (tests/postgres.py): they need initdb,
# pg_ctl and postgres, not a running service. Idempotent and non-interactive; uses
# apt-get only (Debian's `postgresql` package), and tells apt not to create and start the
# usual "main" cluster when it installs postgresql-common for the first time. Needs root
# (or sudo without a password). Exits non-zero with a message if it cannot.
set -euo pipefail

find_initdb() {
  local dir
  for dir in "${TEST_POSTGRES_BIN:-}" "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")" \
    $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/pgsql/bin; do
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

if [ -n "${TEST_POSTGRES_URL:-}" ]; then
  echo "TEST_POSTGRES_URL is set: the tests use that server, nothing to install."
  exit 0
fi

if bindir="$(find_initdb)"; then
  echo "PostgreSQL server binaries are installed: $("$bindir/postgres" --version 2>/dev/null || echo "$bindir")"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "The PostgreSQL server binaries (initdb, pg_ctl) are missing and this machine has no apt-get." >&2
  echo "Install the PostgreSQL server with your package manager and set TEST_POSTGRES_BIN to the" >&2
  echo "folder holding initdb, or set TEST_POSTGRES_URL to an admin URL of a server to use." >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "The PostgreSQL server binaries (initdb, pg_ctl) are missing; installing them needs root." >&2
    echo "Run: sudo $0" >&2
    exit 1
  fi
fi

echo "The PostgreSQL server binaries are missing: installing Debian's postgresql package with apt-get…"
# The tests need the binaries only: no "main" cluster, no service on port 5432.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  $SUDO mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql >/dev/null

if ! bindir="$(find_initdb)"; then
  echo "apt-get finished but initdb and pg_ctl are still not in /usr/lib/postgresql/*/bin." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "Installed, but there is no 'postgres' user for the tests to run the server as (as root)." >&2
  exit 1
fi
echo "Installed: $("$bindir/postgres" --version 2>/dev/null || echo "$bindir")"
