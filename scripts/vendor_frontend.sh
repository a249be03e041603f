#!/usr/bin/env bash
# Re-fetch the vendored front-end files from the npm registry at their pinned versions and
# check each against the sha256 recorded here (and in chronos_api/static/vendor/README.md).
# The app serves these files itself; nothing is ever loaded from a CDN.
#
#   scripts/vendor_frontend.sh          fetch, verify, copy into chronos_api/static/vendor/
#   scripts/vendor_frontend.sh --check  fetch and verify only; the vendored copies must match
set -euo pipefail

HTMX_VERSION=2.0.11
CHARTJS_VERSION=4.6.1

# "package version path-in-tarball vendored-name sha256"
FILES=(
  "htmx.org $HTMX_VERSION dist/htmx.min.js htmx.min.js d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
  "htmx.org $HTMX_VERSION LICENSE LICENSE.htmx d3d2456f76414f2456104660ebd65aff1c04cd7966b942bdabd63f3cdb316a38"
  "chart.js $CHARTJS_VERSION dist/chart.umd.min.js chart.umd.min.js 87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"
  "chart.js $CHARTJS_VERSION LICENSE.md LICENSE.chartjs 41a84aa2caba645f966a18d9c2056b73e6d3a81d80bc0046bc0011a2634d4cce"
)

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$repo/chronos_api/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for package in "htmx.org@$HTMX_VERSION" "chart.js@$CHARTJS_VERSION"; do
  directory="$work/${package%@*}"
  mkdir -p "$directory"
  (cd "$directory" && npm pack --silent "$package" >/dev/null && tar xzf ./*.tgz)
done

status=0
for entry in "${FILES[@]}"; do
  read -r package version source name expected <<<"$entry"
  file="$work/$package/package/$source"
  actual="$(sha256sum "$file" | cut -d' ' -f1)"
  if [[ "$actual" != "$expected" ]]; then
    echo "MISMATCH $package@$version $source: expected $expected, got $actual" >&2
    status=1
    continue
  fi
  if (( check_only )); then
    vendored="$(sha256sum "$vendor/$name" 2>/dev/null | cut -d' ' -f1 || true)"
    if [[ "$vendored" != "$expected" ]]; then
      echo "STALE $vendor/$name differs from $package@$version $source" >&2
      status=1
      continue
    fi
  else
    mkdir -p "$vendor"
    cp "$file" "$vendor/$name"
  fi
  echo "ok  $name  $package@$version  $expected"
done
exit "$status"
