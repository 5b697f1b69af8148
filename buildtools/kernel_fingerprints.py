"""Fingerprints of the device code of each kernel path (buildtools/kernel_paths.py).

A path's fingerprint hashes what an sm_90 GPU executes for it, taken from the built extension:
cuobjdump extracts the sm_90 cubins from the binary's fat binaries, and for every __global__
function of the path the hash covers its machine code, relocations, literal constants (bank 2),
parameter and shared memory sizes, per-kernel attributes (launch bounds, cluster shape, exit
offsets, ...), registers and stack, and its file's __constant__ and initialised device data.
Names are left out (nvcc mangles a source path into each
anonymous namespace), and so is the debug line table, so comments and host code do not move a
fingerprint; any change to what the GPU runs does, and so does renaming a __global__ function (its
parameter bank, which its attributes name, is named after it).

    python -m buildtools.kernel_fingerprints genimg_fast/_C.*.so    # prints them as JSON
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from .kernel_paths import KERNEL_PATHS, path_of_kernel

ARCH = "sm_90"
CUOBJDUMP_ENV = "CUOBJDUMP"
FINGERPRINT_HEX_DIGITS = 16

# Module-wide .nv.info attributes keyed by a function's symbol: registers and stack.
_PER_SYMBOL_ATTRIBUTES = {0x11: "frame_size", 0x12: "min_stack_size", 0x23: "max_stack_size", 0x2F: "registers"}
# Per-kernel .nv.info attributes that name symbols by their index in the symbol table, which
# moves when the file gains or loses a kernel: the parameter bank (its first word) and the
# external functions called (every word). They are hashed with the symbols' names instead.
_SYMBOL_WORDS = {0x0A: 1, 0x0F: None}
# nvcc names an anonymous namespace `_GLOBAL__N__<hash>_<length>_<file>_<hash>[_<number>]` with
# hashes and a number that change from build to build: _canonical drops it with its length prefix.
_ANONYMOUS_NAMESPACE = re.compile(r"_GLOBAL__N__[0-9a-f]{8}_(\d+)_")


class FingerprintError(RuntimeError):
    """The fingerprints cannot be taken (no cuobjdump, no sm_90 code, a kernel of no path)."""


def _cuobjdump_candidates(environ) -> list[tuple[Path, str]]:
    candidates = []
    if environ.get(CUOBJDUMP_ENV):
        candidates.append((Path(environ[CUOBJDUMP_ENV]), f"${CUOBJDUMP_ENV}"))
    nvidia = importlib.util.find_spec("nvidia")
    for root in (nvidia.submodule_search_locations or []) if nvidia else []:
        for sub in ("cu13/bin", "cuda_cuobjdump/bin"):  # the nvidia-cuda-cuobjdump wheel
            candidates.append((Path(root) / sub / "cuobjdump", "the nvidia-cuda-cuobjdump wheel"))
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if environ.get(var):
            candidates.append((Path(environ[var]) / "bin" / "cuobjdump", f"${var}"))
    on_path = shutil.which("cuobjdump")
    if on_path:
        candidates.append((Path(on_path), "PATH"))
    candidates.append((Path("/usr/local/cuda/bin/cuobjdump"), "/usr/local/cuda"))
    triton = importlib.util.find_spec("triton")
    if triton and triton.origin:
        candidates.append((Path(triton.origin).parent / "backends" / "nvidia" / "bin" / "cuobjdump", "triton"))
    return candidates


def find_cuobjdump(environ=None) -> Path:
    """cuobjdump: $CUOBJDUMP, the nvidia-cuda-cuobjdump wheel, the CUDA toolkit, PATH, or triton's copy."""
    environ = os.environ if environ is None else environ
    candidates = _cuobjdump_candidates(environ)
    for path, _ in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise FingerprintError("no cuobjdump found (looked at " + ", ".join(sorted({how for _, how in candidates}))
                           + "): pip install nvidia-cuda-cuobjdump, or set CUOBJDUMP")


def extract_cubins(binary: Path, workdir: Path, cuobjdump: Path) -> list[Path]:
    """The sm_90 cubins embedded in `binary`, written to `workdir`."""
    run = subprocess.run([str(cuobjdump), "-xelf", ARCH, str(Path(binary).resolve())], cwd=workdir,
                         capture_output=True, text=True, check=False)
    cubins = sorted(p for p in workdir.glob(f"*.{ARCH}.cubin"))  # not sm_90a: other code
    if not cubins:
        detail = (run.stderr or run.stdout).strip()
        raise FingerprintError(f"{binary} holds no {ARCH} device code" + (f" ({detail})" if detail else ""))
    return cubins


def _canonical(name: str) -> str:
    """`name` without its anonymous namespaces (each with the length that prefixes it)."""
    out, position = [], 0
    for match in _ANONYMOUS_NAMESPACE.finditer(name):
        start = match.start()
        if start < position:
            continue
        file_length = int(match.group(1))
        core = match.end() - start + file_length + 9  # ..._<file>_<8 hex digits>
        digits = re.search(r"\d+$", name[position:start])
        prefix = digits.group() if digits else ""
        for k in range(1, len(prefix) + 1):  # the length prefix: the shortest tail that fits
            length = int(prefix[-k:])
            tail = name[start + core:start + length]
            if length == core or (length > core and tail[:1] == "_" and tail[1:].isdigit()):
                out.append(name[position:start - k] + "(anonymous)")
                position = start + length
                break
    out.append(name[position:])
    return "".join(out)


def _function_name(mangled: str) -> str:
    """The unqualified name of a mangled function: `_ZN11genimg_fast18reduce_nchw_kernelI...` ->
    `reduce_nchw_kernel` (the last of the nested names before its template arguments)."""
    if not mangled.startswith("_Z"):
        return mangled
    rest = mangled[3:] if mangled.startswith("_ZN") else mangled[2:]
    name = mangled
    while rest[:1].isdigit():
        digits = re.match(r"\d+", rest).group()
        length = int(digits)
        name = rest[len(digits):len(digits) + length]
        rest = rest[len(digits) + length:]
    return name


def _info_records(data: bytes):
    """(attribute, value bytes) of a .nv.info section's records."""
    offset = 0
    while offset + 2 <= len(data):
        fmt, attribute = data[offset], data[offset + 1]
        offset += 2
        if fmt == 0x04:  # a value with its size
            (size,) = struct.unpack_from("<H", data, offset)
            yield attribute, data[offset + 2:offset + 2 + size]
            offset += 2 + size
        else:  # no value, a byte or a half word: each in the record's second half word
            yield attribute, data[offset:offset + 2]
            offset += 2


def _kernel_attributes(data: bytes, symbol_name) -> list:
    """A kernel's .nv.info records, symbol indices replaced by names."""
    records = []
    for attribute, value in _info_records(data):
        if attribute in _SYMBOL_WORDS and len(value) % 4 == 0:
            words = list(struct.unpack(f"<{len(value) // 4}I", value))
            named = len(words) if _SYMBOL_WORDS[attribute] is None else _SYMBOL_WORDS[attribute]
            records.append((attribute, [symbol_name(w) for w in words[:named]] + words[named:]))
        else:
            records.append((attribute, value.hex()))
    return records


def _relocations(elf, section_name: str, symtab) -> list[tuple]:
    from elftools.elf.relocation import RelocationSection

    section = elf.get_section_by_name(section_name)
    if not isinstance(section, RelocationSection):
        return []
    return [(r["r_offset"], r["r_info_type"], _canonical(symtab.get_symbol(r["r_info_sym"]).name),
             r["r_addend"] if r.is_RELA() else None) for r in section.iter_relocations()]


def kernel_materials(cubin: Path) -> list[tuple[str, dict]]:
    """(function name, what is hashed) of each function in `cubin`."""
    from elftools.elf.elffile import ELFFile

    materials = []
    with open(cubin, "rb") as stream:
        elf = ELFFile(stream)
        symtab = elf.get_section_by_name(".symtab")
        symbol_index = {symbol.name: i for i, symbol in enumerate(symtab.iter_symbols())}

        def symbol_name(index: int) -> str:
            return _canonical(symtab.get_symbol(index).name) if index < symtab.num_symbols() else "?"

        per_symbol: dict[int, list[tuple[int, int]]] = {}
        module_info = elf.get_section_by_name(".nv.info")
        for attribute, value in _info_records(module_info.data() if module_info else b""):
            if attribute in _PER_SYMBOL_ATTRIBUTES and len(value) == 8:
                symbol, amount = struct.unpack("<II", value)
                per_symbol.setdefault(symbol, []).append((attribute, amount))

        def data(name: str) -> bytes:
            section = elf.get_section_by_name(name)
            return section.data() if section is not None and section["sh_type"] != "SHT_NOBITS" else b""

        def size(name: str) -> int:
            section = elf.get_section_by_name(name)
            return section["sh_size"] if section is not None else -1

        # The file's __constant__ and initialised __device__ data, which any of its kernels may
        # read: hashed into each (a change to a table moves every kernel of the file).
        module_data = hashlib.sha256(b"".join(
            data(name) + size(name).to_bytes(8, "little", signed=True)
            for name in (".nv.constant3", ".nv.global.init", ".nv.global"))).hexdigest()

        for section in elf.iter_sections():
            if not section.name.startswith(".text."):
                continue
            mangled = section.name[len(".text."):]
            material = {
                "code": section.data().hex(),
                "relocations": _relocations(elf, f".rela.text.{mangled}", symtab),
                "constants": data(f".nv.constant2.{mangled}").hex(),
                "constant_relocations": _relocations(elf, f".rela.nv.constant2.{mangled}", symtab),
                "parameters_bytes": size(f".nv.constant0.{mangled}"),
                "shared_bytes": size(f".nv.shared.{mangled}"),
                "attributes": _kernel_attributes(data(f".nv.info.{mangled}"), symbol_name),
                "registers_and_stack": sorted(per_symbol.get(symbol_index.get(mangled, -1), [])),
                "module_data": module_data,
            }
            materials.append((_function_name(mangled), material))
    return materials


def kernel_digests(cubin: Path) -> dict[str, list[str]]:
    """Per function name, the digests of the sm_90 functions of that name in `cubin`."""
    digests: dict[str, list[str]] = {}
    for function, material in kernel_materials(cubin):
        digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
        digests.setdefault(function, []).append(digest)
    return digests


def compiler_of(cubin: Path) -> str:
    """The ptxas release and options that made `cubin` (its .note.nv.tkinfo)."""
    from elftools.elf.elffile import ELFFile

    with open(cubin, "rb") as stream:
        note = ELFFile(stream).get_section_by_name(".note.nv.tkinfo")
        text = note.data() if note is not None else b""
    fields = [f.decode(errors="replace").strip() for f in text.split(b"\0") if f.strip()]
    release = next((f for f in fields if "release" in f), "unknown release")
    options = " ".join(next((f for f in fields if f.startswith("-")), "").split())
    return f"ptxas {release.split(', ')[-1]} {options}".strip()


def fingerprint_cubins(cubins: list[Path], every_path: bool = True) -> dict[str, dict]:
    """{path: {"fingerprint": hex, "kernels": count}} for every path of KERNEL_PATHS (with
    `every_path` False, for those the cubins have: an older build's)."""
    per_path: dict[str, list[str]] = {path: [] for path in KERNEL_PATHS}
    unknown = []
    for cubin in cubins:
        for function, digests in kernel_digests(cubin).items():
            path = path_of_kernel(function)
            if path is None:
                unknown.append(f"{function} ({cubin.name})")
            else:
                per_path[path].extend(digests)
    if unknown:
        raise FingerprintError("device functions of no kernel path (add them to buildtools/kernel_paths.py): "
                               + ", ".join(sorted(unknown)))
    missing = [path for path, digests in per_path.items() if not digests]
    if missing and every_path:
        raise FingerprintError(f"kernel paths with no {ARCH} kernels in the binary: {', '.join(missing)}")
    return {path: {"fingerprint": hashlib.sha256(("\n".join([ARCH, *sorted(digests)])).encode())
                   .hexdigest()[:FINGERPRINT_HEX_DIGITS], "kernels": len(digests)}
            for path, digests in per_path.items() if digests}


def fingerprint_extension(binary: Path, environ=None, every_path: bool = True) -> dict:
    """The fingerprints of a built extension: {"arch", "compiler", "paths": {path: {...}}}."""
    if importlib.util.find_spec("elftools") is None:
        raise FingerprintError("pyelftools is not installed (pip install pyelftools)")
    cuobjdump = find_cuobjdump(environ)
    with tempfile.TemporaryDirectory(prefix="genimg_fast_cubins_") as tmp:
        cubins = extract_cubins(Path(binary), Path(tmp), cuobjdump)
        compilers = sorted({compiler_of(c) for c in cubins})
        return {"arch": ARCH, "compiler": "; ".join(compilers), "paths": fingerprint_cubins(cubins, every_path)}


def toolchain(fingerprints: dict, torch_version: str) -> str:
    """What else made the device code: the compiler and the torch whose headers it included.
    Equal fingerprints are the same machine code whatever made them; unequal ones under two
    toolchains say nothing about the source."""
    return f"{fingerprints['compiler']}; torch {torch_version}"


def write_build_fingerprints(binary: Path, destination: Path, torch_version: str) -> str:
    """Fingerprint a fresh build into `destination` (JSON read by genimg_fast at run time), or
    record why not; returns a line for the build log."""
    try:
        taken = fingerprint_extension(binary)
    except Exception as exc:  # noqa: BLE001 - never fail a build that compiled: record why instead
        destination.write_text(json.dumps({"error": str(exc)}, indent=2) + "\n")
        return f"no kernel fingerprints ({exc})"
    record = {"toolchain": toolchain(taken, torch_version), "arch": taken["arch"], "paths": taken["paths"]}
    destination.write_text(json.dumps(record, indent=2) + "\n")
    return f"kernel fingerprints of {len(taken['paths'])} paths ({taken['arch']}) in {destination.name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fingerprint the sm_90 device code of each kernel path.")
    parser.add_argument("binary", type=Path, help="the built extension, e.g. genimg_fast/_C.cpython-311-x86_64-linux-gnu.so")
    parser.add_argument("--partial", action="store_true",
                        help="report the paths the binary has (an older build may lack some) instead of failing")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(fingerprint_extension(args.binary, every_path=not args.partial), indent=2))
    except FingerprintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
