#!/bin/sh
# The protoc that etcd-client's build script runs to generate its gRPC code (.cargo/config.toml
# points PROTOC here), so that a fresh machine with Rust alone builds tenure: the protoc on PATH
# if there is one, else the one that the crate protoc-bin-vendored (a build-dependency of
# tenure-node, which cargo downloads before any build script runs) carries in the registry.
# A PROTOC set in the environment takes precedence over this script altogether.
if command -v protoc >/dev/null 2>&1; then
    exec protoc "$@"
fi
case "$(uname -m)" in
    x86_64) platform=linux-x86_64 ;;
    aarch64) platform=linux-aarch_64 ;;
    *) echo "protoc-for-build.sh: no vendored protoc for $(uname -m); install protoc" >&2; exit 1 ;;
esac
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
for directory in "$registry"/*/protoc-bin-vendored-"$platform"-*/; do
    if [ -x "$directory/bin/protoc" ]; then
        exec "$directory/bin/protoc" -I "$directory/include" "$@"
    fi
done
echo "protoc-for-build.sh: no protoc on PATH and none vendored under $registry; install protoc (Debian: apt-get install protobuf-compiler)" >&2
exit 1
