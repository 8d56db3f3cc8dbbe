"""A dependency-free PEP 517/660 build backend for the Python SDK.

`pip install sdk/python` must work offline and on a bare Debian Python (no `wheel`, old
setuptools), so the SDK builds its own wheel: a pure-Python package needs nothing more
than a zip with the package and its metadata.
"""

import base64
import hashlib
import os
import re
import zipfile

NAME = "arbiter_sdk"
DIST = "arbiter_sdk"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version():
    # The one place the version lives: `arbiter_sdk.__version__`.
    with open(os.path.join(ROOT, NAME, "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _metadata():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return (
        "Metadata-Version: 2.1\n"
        "Name: arbiter-sdk\n"
        f"Version: {_version()}\n"
        "Summary: Write Arbiter verifiers, routers and decomposers in Python\n"
        "License: Apache-2.0\n"
        "Requires-Python: >=3.9\n"
        "Classifier: Typing :: Typed\n"
        "Description-Content-Type: text/markdown\n\n" + readme
    )


def _wheel(wheel_directory, files):
    """Writes a wheel of `files` (archive name -> bytes) and returns its file name."""
    dist_info = f"{DIST}-{_version()}.dist-info"
    files = dict(files)
    files[f"{dist_info}/METADATA"] = _metadata().encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: arbiter_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = f"{DIST}-{_version()}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return wheel_name


def _package_files():
    out = {}
    pkg = os.path.join(ROOT, NAME)
    for entry in sorted(os.listdir(pkg)):
        # Sources and the `py.typed` marker that makes type checkers use the annotations.
        if entry.endswith(".py") or entry == "py.typed":
            with open(os.path.join(pkg, entry), "rb") as f:
                out[f"{NAME}/{entry}"] = f.read()
    return out


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # A .pth line puts this folder on sys.path, so edits to the SDK show at once.
    return _wheel(wheel_directory, {f"{DIST}.pth": (ROOT + "\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    import tarfile

    base = f"{DIST}-{_version()}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/arbiter_build.py"] + list(_package_files()):
            t.add(os.path.join(ROOT, rel), arcname=f"{base}/{rel}")
        info = _metadata().encode()
        import io

        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(info)
        t.addfile(ti, io.BytesIO(info))
    return name
