#!/usr/bin/env bash
# Rebuild dashboards/static/plotly-nasplat.min.js: plotly.js with only the trace types the
# dashboards draw (scatter, scattergl, heatmap, parcats, table), about a third of the full
# bundle, so the browser parses and evaluates less before the first figure. Needs node and npm
# (package registry access); the built file is committed, so nothing else runs this.
#
#   scripts/build_plotly.sh [VERSION]   VERSION: plotly.js to build (default: the one plotly.py ships)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-$(.venv/bin/python -c 'from plotly.offline import get_plotlyjs_version as v; print(v())')}"
out="$PWD/dashboards/static/plotly-nasplat.min.js"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "plotly.js@$version" >/dev/null
tar xzf "plotly.js-$version.tgz"
cd package
npm install --silent --omit=dev --ignore-scripts --no-audit --no-fund
npm install --silent --no-save --ignore-scripts --no-audit --no-fund \
    esbuild esbuild-plugin-inline-css esbuild-plugin-glsl esbuild-plugin-environment stream-browserify
cat > nasplat-entry.js <<'JS'
var Plotly = require('./lib/core');
Plotly.register([
    require('./lib/scatter'), require('./lib/scattergl'), require('./lib/heatmap'),
    require('./lib/parcats'), require('./lib/table'),
]);
module.exports = Plotly;
JS
cat > nasplat-build.js <<'JS'
// plotly.js's own esbuild settings (esbuild-config.js), on the entry above
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
esbuild.build({
    entryPoints: ['./nasplat-entry.js'], outfile: process.argv[2], format: 'iife',
    globalName: 'Plotly', bundle: true, minify: true, sourcemap: false,
    plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
    alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false' }, target: 'es2016',
    banner: { js: `/* plotly.js v${process.argv[3]} (MIT licence, Copyright 2012-2026 Plotly, Inc.): scatter, scattergl, heatmap, parcats, table; built by nasplat's scripts/build_plotly.sh */` },
}).catch(() => process.exit(1));
JS
node nasplat-build.js "$out" "$version"
echo "$version" > "$(dirname "$out")/plotly-nasplat.version"
echo "built $out ($(du -h "$out" | cut -f1), plotly.js $version)" >&2
