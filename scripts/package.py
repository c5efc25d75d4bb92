"""Build the QGIS "Install from ZIP" archive: diffunmix/ + plugin files only.

Usage: python3 scripts/package.py --out dist/diffunmix.zip
"""

import argparse
import os
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = ["metadata.txt", "__init__.py", "LICENSE", "README.md", "SECURITY.md", "core", "plugin",
           "resources", "i18n"]
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
SKIP_SUFFIX = (".pyc", ".pyo", ".ts", ".aux.xml")


def files():
    for item in INCLUDE:
        path = os.path.join(ROOT, item)
        if os.path.isfile(path):
            yield item
        elif os.path.isdir(path):
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
                for name in sorted(names):
                    if name.endswith(SKIP_SUFFIX) or name.startswith("."):
                        continue
                    yield os.path.relpath(os.path.join(folder, name), ROOT)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.join(ROOT, "dist", "diffunmix.zip"))
    a = ap.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".partial"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        count = 0
        for rel in files():
            zf.write(os.path.join(ROOT, rel), os.path.join("diffunmix", rel))
            count += 1
    os.replace(tmp, a.out)
    print(f"{a.out}: {count} files")


if __name__ == "__main__":
    main()
