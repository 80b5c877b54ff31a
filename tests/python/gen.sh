#!/bin/sh
# Generates the Python stubs of saker.v1 from proto/saker/v1/*.proto.
#
#   tests/python/gen.sh [OUT_DIR]
#
# OUT_DIR defaults to a new temporary directory. Prints OUT_DIR on stdout; put it on
# sys.path (client.py's load_stubs does) to `import saker.v1.events_pb2` etc.
# Needs the packages of requirements.txt (grpc_tools ships its own protoc).
# PYTHON picks the interpreter (default python3); SAKER_PROTO_ROOT the proto root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=${SAKER_PROTO_ROOT:-$here/../../proto}
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/saker-pystubs.XXXXXX")}
mkdir -p "$out"
"${PYTHON:-python3}" -m grpc_tools.protoc \
    -I"$root" \
    --python_out="$out" \
    --pyi_out="$out" \
    --grpc_python_out="$out" \
    "$root"/saker/v1/*.proto
touch "$out/saker/__init__.py" "$out/saker/v1/__init__.py"
echo "$out"
