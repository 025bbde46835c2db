#!/usr/bin/env bash
# Alias for scripts/bench (both names are used); all arguments are passed on.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/bench" "$@"
