#!/usr/bin/env bash
# The JavaScript libraries the HTML pages inline, fetched at their pinned versions from
# npm into nsdebug/html/vendor/ (with their licences). Run it to change a version: edit
# the list, run, commit the files it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
out=nsdebug/html/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# package@version  file-in-its-dist  name-in-vendor
pins=(
  "echarts@6.1.0 dist/echarts.min.js echarts.min.js"
  "d3@7.9.2 dist/d3.min.js d3.min.js"
  "d3-flame-graph@5.0.0 dist/d3-flamegraph.umd.min.js d3-flamegraph.umd.min.js"
)
: > "$work/LICENSES"
: > "$work/VERSIONS"
for pin in "${pins[@]}"; do
  read -r pkg file name <<< "$pin"
  dir="$work/${pkg%@*}"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg" > /dev/null && tar xzf ./*.tgz)
    { echo "== $pkg"; cat "$dir/package/LICENSE"; echo; } >> "$work/LICENSES"
    echo "$pkg" >> "$work/VERSIONS"
  fi
  cp "$dir/package/$file" "$out/$name"
done
cp "$work/LICENSES" "$work/VERSIONS" "$out/"
echo "vendored: $(tr '\n' ' ' < "$out/VERSIONS")"
