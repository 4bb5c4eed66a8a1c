"""Zips a Lambda `bootstrap` reproducibly: one entry named `bootstrap`, mode 0755, the zip epoch
(1980-01-01) as its time, deflate level 9. The same binary always gives the same zip bytes, so the
CDK asset hash changes exactly when the binary does. (cargo lambda's own zip stamps the file's
modification time.)

    python3 scripts/zip_artefact.py target/lambda/<name>/bootstrap target/lambda/<name>/bootstrap.zip
"""

import os
import sys
import zipfile


def main(binary: str, archive: str) -> None:
    entry = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    entry.create_system = 3  # Unix, so the mode below is honoured
    entry.external_attr = (0o100755 & 0xFFFF) << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    temporary = archive + ".partial"
    with open(binary, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(temporary, "w") as z:
        z.writestr(entry, data, compresslevel=9)
    os.replace(temporary, archive)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: zip_artefact.py BOOTSTRAP ZIP")
    main(sys.argv[1], sys.argv[2])
