# Sourced by the README's commands after set-up: the Node that set-up fetched
# (.cache/node, when the machine's is older than 24) comes first on PATH, so the
# commands and every process they start run on it.
if [ -x .cache/node/node_modules/node/bin/node ] \
   && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 24 ]; then
  export PATH="$PWD/.cache/node/node_modules/node/bin:$PATH"
fi
