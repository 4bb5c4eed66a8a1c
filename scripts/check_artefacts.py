"""The runtime floor of the deployable artefacts (scripts/package runs it; so does scripts/test).

For each function's target/lambda/<name>/bootstrap.zip it checks, with binutils' readelf:
- the zip holds exactly one executable `bootstrap`, byte-identical to the built binary;
- it is a 64-bit aarch64 ELF executable (Lambda's arm64);
- it is static, or its interpreter is /lib/ld-linux-aarch64.so.1 and every library it needs is
  one that Amazon Linux 2023's base image (the provided.al2023 runtime) ships: glibc's and libgcc_s;
- no symbol it needs is versioned above GLIBC_2.34 (Amazon Linux 2023's glibc);
- the zip is within Lambda's 50 MB direct-upload limit, the binary within the 250 MB unzipped one.
Prints a table and exits 1 if any artefact fails.

    python3 scripts/check_artefacts.py target/lambda submit-keys register ...

With `--cdk-out DIR` (after `cdk synth` of the real zips) it checks instead that each function of
DIR/Cocoa.template.json is deployed from an asset byte-identical to its built zip, and that no
function is deployed from the placeholder.
"""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

AL2023_GLIBC = (2, 34)
# glibc's libraries (in /lib64 of every Amazon Linux 2023 image) and libgcc_s (package libgcc).
AL2023_LIBRARIES = {
    "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1",
    "libresolv.so.2", "ld-linux-aarch64.so.1", "libgcc_s.so.1",
}
INTERPRETER = "/lib/ld-linux-aarch64.so.1"
ZIP_LIMIT = 50 * 1000 * 1000  # Lambda: 50 MB zipped, for a direct upload
UNZIPPED_LIMIT = 250 * 1000 * 1000


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout


def glibc_versions(version_info: str) -> list[tuple[int, ...]]:
    """Every GLIBC_x.y[.z] a binary's version-needs section (readelf -V) asks for."""
    needs = version_info.split("Version needs section", 1)
    if len(needs) < 2:
        return []
    return [tuple(int(p) for p in m.split(".")) for m in re.findall(r"Name: GLIBC_([0-9.]+)", needs[1])]


def needed_libraries(dynamic: str) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)


def interpreter(program_headers: str) -> str | None:
    found = re.search(r"\[Requesting program interpreter: ([^\]]+)\]", program_headers)
    return found.group(1) if found else None


def check(directory: Path, name: str) -> tuple[list[str], list[str]]:
    """The row of the table for one function, and its failures."""
    problems: list[str] = []
    archive = directory / name / "bootstrap.zip"
    binary = directory / name / "bootstrap"
    if not archive.is_file():
        return [name, "missing", "", "", ""], [f"{archive} is missing: run scripts/package"]
    with zipfile.ZipFile(archive) as z:
        entries = z.infolist()
        if [e.filename for e in entries] != ["bootstrap"]:
            problems.append(f"the zip holds {[e.filename for e in entries]}, not just bootstrap")
        elif (entries[0].external_attr >> 16) & 0o111 != 0o111:
            problems.append("bootstrap is not executable in the zip")
        elif z.read("bootstrap") != binary.read_bytes():
            problems.append("the zipped bootstrap differs from the built one")
    header = readelf("-h", str(binary))
    if "ELF64" not in header or "AArch64" not in header or "EXEC" not in header and "DYN" not in header:
        problems.append("not a 64-bit aarch64 ELF executable")
    wanted_interpreter = interpreter(readelf("-l", str(binary)))
    libraries = needed_libraries(readelf("-d", str(binary)))
    versions = glibc_versions(readelf("-V", str(binary)))
    if wanted_interpreter is None and libraries:
        problems.append("needs libraries but has no interpreter")
    if wanted_interpreter not in (None, INTERPRETER):
        problems.append(f"interpreter {wanted_interpreter}, not {INTERPRETER}")
    foreign = sorted(set(libraries) - AL2023_LIBRARIES)
    if foreign:
        problems.append(f"needs {', '.join(foreign)}, which provided.al2023 lacks")
    newest = max(versions, default=None)
    if newest is not None and newest > AL2023_GLIBC:
        problems.append(f"needs GLIBC_{'.'.join(map(str, newest))}, newer than Amazon Linux 2023's 2.34")
    zipped, unzipped = archive.stat().st_size, binary.stat().st_size
    if zipped > ZIP_LIMIT:
        problems.append(f"zip is {zipped} bytes, over the 50 MB direct-upload limit")
    if unzipped > UNZIPPED_LIMIT:
        problems.append(f"bootstrap is {unzipped} bytes, over the 250 MB unzipped limit")
    row = [
        name,
        f"{zipped / 1e6:.2f} MB ({zipped / ZIP_LIMIT:.1%} of 50 MB)",
        f"{unzipped / 1e6:.2f} MB",
        "static" if not libraries else f"GLIBC_{'.'.join(map(str, newest))}" if newest else "none",
        ", ".join(libraries) or "-",
    ]
    return row, [f"{name}: {p}" for p in problems]


def check_template(cdk_out: Path, directory: Path, names: list[str]) -> list[str]:
    """Each function's code in the synthesized template is the asset of its built zip."""
    template = json.loads((cdk_out / "Cocoa.template.json").read_text())
    manifest = json.loads((cdk_out / "Cocoa.assets.json").read_text())
    functions = {
        r["Properties"].get("FunctionName"): r["Properties"]["Code"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    failures = []
    for name in names:
        code = functions.get(name)
        if code is None:
            failures.append(f"{name}: not a function of the template")
            continue
        asset_hash = str(code.get("S3Key", "")).removesuffix(".zip")
        asset = manifest["files"].get(asset_hash)
        if asset is None:
            failures.append(f"{name}: its code {code} is no file asset of the manifest")
            continue
        source = cdk_out / asset["source"]["path"]
        if asset["source"].get("packaging") != "file" or not source.is_file():
            failures.append(f"{name}: deployed from {source} (packaged as a directory), not its zip")
        elif source.read_bytes() != (directory / name / "bootstrap.zip").read_bytes():
            failures.append(f"{name}: its asset {source.name} is not the zip scripts/package built")
        else:
            print(f"check_artefacts: {name} deploys {source.name} = {directory / name / 'bootstrap.zip'}",
                  file=sys.stderr)
    return failures


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--cdk-out":
        cdk_out, argv = Path(argv[1]), argv[2:]
        failures = check_template(cdk_out, Path(argv[0]), argv[1:])
        for failure in failures:
            print(f"check_artefacts: {failure}", file=sys.stderr)
        return 1 if failures else 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory, names = Path(argv[0]), argv[1:]
    print("| function | bootstrap.zip | bootstrap | newest glibc symbol | needs |")
    print("|---|---|---|---|---|")
    failures: list[str] = []
    for name in names:
        row, problems = check(directory, name)
        print("| " + " | ".join(row) + " |")
        failures.extend(problems)
    for failure in failures:
        print(f"check_artefacts: {failure}", file=sys.stderr)
    if not failures:
        print(f"check_artefacts: {len(names)} artefacts: aarch64, glibc <= 2.34, only provided.al2023's libraries, "
              "within Lambda's size limits", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
