# ort_node.sh - sourced by the ONNX Runtime tests (test_train_ort.sh, test_lora_ort.sh, test_stream_ort.sh):
# finds onnxruntime-node in $BUILD/ort or bench/node_modules, else installs onnxruntime-node@$ORT_VERSION into
# $BUILD/ort with npm, and exports NODE_PATH. Without node, npm or network it calls the caller's skip()
# (exit 77). Expects BUILD, ORT_VERSION, TEST (the caller's name) and skip() to be set.
if ! command -v node >/dev/null 2>&1; then
    skip "node is not installed (apt-get install nodejs npm)"
fi
NODE_PATH=
for d in "$BUILD/ort/node_modules" bench/node_modules; do
    if [ -f "$d/onnxruntime-node/package.json" ]; then
        NODE_PATH=$(cd "$d" && pwd)
        break
    fi
done
if [ -z "$NODE_PATH" ]; then
    command -v npm >/dev/null 2>&1 || skip "npm is not installed, and no onnxruntime-node in $BUILD/ort or bench/"
    mkdir -p "$BUILD/ort"
    echo "$TEST: installing onnxruntime-node@$ORT_VERSION into $BUILD/ort"
    if ! (cd "$BUILD/ort" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent \
            "onnxruntime-node@$ORT_VERSION" >npm.log 2>&1); then
        tail -5 "$BUILD/ort/npm.log" 2>/dev/null || true
        skip "npm install onnxruntime-node@$ORT_VERSION failed (no network?)"
    fi
    NODE_PATH=$(cd "$BUILD/ort/node_modules" && pwd)
fi
export NODE_PATH
