"""Regenerate `webcast_pb2.py` and its typed stub `webcast_pb2.pyi` from `webcast.proto`.

The generated modules are committed so that running the service needs only the `protobuf`
runtime; generating them needs the dev extra (`grpcio-tools` bundles `protoc`, `mypy-protobuf`
writes the stub mypy strict reads). `tests/sandbox/test_proto.py` regenerates into a temporary
folder and fails when the committed files differ, so the `.proto` stays the one definition.

Run `python -m tiktok.proto.generate` from the repository root after editing the `.proto`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
# protoc names the generated module after the .proto's path below the include root, so the
# root is the repository: the descriptor is then `tiktok/proto/webcast.proto`.
ROOT = PROTO_DIR.parent.parent
PROTO = PROTO_DIR / "webcast.proto"
GENERATED = ("webcast_pb2.py", "webcast_pb2.pyi")


def _mypy_plugin() -> str:
    # The plugin is a console script installed beside the interpreter by mypy-protobuf.
    beside = Path(sys.executable).parent / "protoc-gen-mypy"
    found = str(beside) if beside.exists() else shutil.which("protoc-gen-mypy")
    if found is None:
        raise RuntimeError("protoc-gen-mypy not found: install the dev extra (mypy-protobuf)")
    return found


def generate(out_dir: Path) -> list[Path]:
    """Write the generated modules under `out_dir` (as `tiktok/proto/...`) and return them."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # dev-only, untyped

    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"--proto_path={ROOT}",
        f"--plugin=protoc-gen-mypy={_mypy_plugin()}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        str(PROTO.relative_to(ROOT)),
    ]
    # protoc resolves the file argument against the include root, not the working directory.
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    target = out_dir / PROTO_DIR.relative_to(ROOT)
    return [target / name for name in GENERATED]


def main() -> None:
    """Regenerate the committed modules in place."""
    for path in generate(ROOT):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
