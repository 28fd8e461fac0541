#!/usr/bin/env bash
# Vendor onnxruntime-web from the npm registry into the package's web assets, for the on-device
# mode of the web page. Nothing is fetched from a CDN at run time; these files are not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${ORT_WEB_VERSION:-1.30.0}"
dest=src/maskwatch/web/static/ort
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --ignore-scripts "onnxruntime-web@$VERSION" >/dev/null
mkdir -p "$dest"
for f in ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm; do
  cp "$work/node_modules/onnxruntime-web/dist/$f" "$dest/"
done
cp "$work/node_modules/onnxruntime-web/LICENSE" "$dest/LICENSE" 2>/dev/null || true
echo "onnxruntime-web $VERSION -> $dest"
