"""MathJax served by the site itself: an mkdocs hook that vendors a pinned MathJax.

The site renders the chapters' equations offline (no CDN): at build time this hook takes
MathJax ``VERSION`` from the npm registry with ``npm pack`` (the ordinary client), checks
the tarball's sha256 against ``SHA256``, keeps it in ``build/vendor/`` (later builds reuse
it, checked again), and publishes the files the site needs under ``javascripts/mathjax/``:
the combined TeX + MathML -> CommonHTML component ``tex-mml-chtml.js`` (which
``mkdocs.yml``'s ``extra_javascript`` loads), the TeX extensions it loads on demand
(``\\boldsymbol``, ``\\cancel``, ...), the menu, the accessibility components but the speech
engine, and the woff fonts. About 3 MB of the site; nothing of it is committed.

Without npm, put ``mathjax-VERSION.tgz`` (``npm pack mathjax@VERSION`` on any machine) into
``build/vendor/``; a tarball whose sha256 differs is refused.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "build" / "vendor"
VERSION = "3.2.2"
SHA256 = "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
SITE_DIR = "javascripts/mathjax"
KEEP = (  # under the package's es5/: what the site loads, or may load on demand
    "tex-mml-chtml.js",
    "input/tex/extensions/",
    "output/chtml/fonts/woff-v2/",
    "ui/",
    "a11y/assistive-mml.js",
    "a11y/complexity.js",
    "a11y/explorer.js",
    "a11y/semantic-enrich.js",
)


class VendorError(Exception):
    """MathJax could not be had, or its tarball is not the pinned one."""


def tarball() -> Path:
    """``build/vendor/mathjax-VERSION.tgz``, fetched with ``npm pack`` when missing, its
    sha256 checked."""
    path = VENDOR / f"mathjax-{VERSION}.tgz"
    if not path.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise VendorError(
                f"MathJax {VERSION} is fetched with `npm pack mathjax@{VERSION}` and there is "
                f"no npm: install Node.js's npm, or put mathjax-{VERSION}.tgz into {VENDOR}"
            )
        VENDOR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "pack", f"mathjax@{VERSION}", "--pack-destination", str(VENDOR), "--silent"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or not path.is_file():
            raise VendorError(f"npm pack mathjax@{VERSION} failed:\n{done.stderr.strip()}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        raise VendorError(f"{path}: sha256 {digest}, expected {SHA256} (MathJax {VERSION})")
    return path


def unpack() -> Path:
    """The kept files of the pinned tarball, unpacked once into ``build/vendor/mathjax-VERSION/``
    (laid out as under the package's ``es5/``)."""
    source = tarball()
    target = VENDOR / f"mathjax-{VERSION}"
    done = target / ".unpacked"
    if done.is_file() and done.read_text(encoding="utf-8") == SHA256:
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tarfile.open(source) as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if not member.isfile() or name.parts[:2] != ("package", "es5"):
                continue
            rel = PurePosixPath(*name.parts[2:]).as_posix()
            if any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in KEEP):
                data = tar.extractfile(member)
                assert data is not None
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                (target / rel).write_bytes(data.read())
        licence = tar.extractfile("package/LICENSE")
        assert licence is not None
        (target / "LICENSE").write_bytes(licence.read())
    done.write_text(SHA256, encoding="utf-8")
    return target


def on_files(files: Any, config: Any) -> Any:
    """Publish the vendored MathJax under ``javascripts/mathjax/``."""
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    try:
        folder = unpack()
    except VendorError as err:
        raise PluginError(str(err)) from None
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".unpacked"):
        uri = f"{SITE_DIR}/{path.relative_to(folder).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
