"""Dataset files: where each one is found, and how a missing one is downloaded and checked.

A dataset is found by name. Each of its files is looked for, in order, in

1. ``$SEQLAB_DATA/<folder>``;
2. ``../shared/data/<folder>``, relative to the current directory and to the checkout that
   holds this package (``<repo>/../shared/data``);
3. the cache, ``$SEQLAB_CACHE/<folder>`` (default ``~/.cache/seqlab/<folder>``);
4. files shipped inside the package (Tiny Shakespeare);
5. its download URL: streamed into the cache, checked against its sha256, and only then
   moved into place.

``resolve`` also accepts any existing file path. The datasets themselves (files, sha256,
download URLs, licences) are listed in :mod:`seqlab.data.catalogue`.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from seqlab.data.catalogue import DATASETS, DatasetSpec
from seqlab.errors import DataError
from seqlab.io import atomic_path

log = logging.getLogger(__name__)

_RESOURCES = Path(__file__).resolve().parents[1] / "resources"
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- search path


def cache_root() -> Path:
    """``$SEQLAB_CACHE`` or ``~/.cache/seqlab``: where downloads go."""
    return Path(os.environ.get("SEQLAB_CACHE") or Path.home() / ".cache" / "seqlab").expanduser()


def search_roots() -> list[Path]:
    """The folders searched for ``<folder>/<file>``, in order, without duplicates."""
    candidates: list[Path] = []
    if os.environ.get("SEQLAB_DATA"):
        candidates.append(Path(os.environ["SEQLAB_DATA"]).expanduser())
    candidates.append(Path.cwd() / ".." / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[3] / ".." / "shared" / "data")
    candidates.append(cache_root())
    roots: list[Path] = []
    for candidate in candidates:
        root = candidate.resolve()
        if root not in roots:
            roots.append(root)
    return roots


def _find_file(spec: DatasetSpec, relpath: str) -> Path | None:
    for root in search_roots():
        path = root / spec.folder / relpath
        if path.is_file():
            return path
    if relpath in spec.bundled:
        path = _RESOURCES / spec.bundled[relpath]
        if path.is_file():
            return path
    return None


def _find_dir(spec: DatasetSpec) -> Path | None:
    for root in search_roots():
        if (root / spec.folder).is_dir():
            return root / spec.folder
    return None


# --------------------------------------------------------------------------- downloads


def sha256_of(path: Path) -> str:
    """Hex sha256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, sha256: str) -> Path:
    """Stream ``url`` into ``dest`` if its bytes have the given sha256.

    The bytes go to a temporary file beside ``dest`` that replaces it atomically only once
    the digest matches; on any failure the temporary file is removed and ``dest`` is
    untouched. A wrong digest is a DataError naming the file and both digests.
    """
    log.info("downloading %s to %s", url, dest)
    try:
        with atomic_path(dest, suffix=".part") as tmp:
            digest = hashlib.sha256()
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise DataError(
                    f"{dest.name} downloaded from {url} has sha256 {digest.hexdigest()}, "
                    f"expected {sha256}; the download was discarded"
                )
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise DataError(
            f"could not download {url} ({error}); fetch it yourself and put it at {dest}"
        ) from None
    return dest


def _extract(archive: Path, folder: Path) -> None:
    """Unpack a zip into ``folder``; members land only once the whole archive is read."""
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=folder) as tmp:
        try:
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
        except (zipfile.BadZipFile, OSError) as error:
            raise DataError(f"{archive}: cannot unpack ({error})") from None
        for member in sorted(Path(tmp).rglob("*")):
            if member.is_file():
                target = folder / member.relative_to(tmp)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(member, target)


def fetch(spec: DatasetSpec, relpath: str) -> Path:
    """Path of ``<folder>/<relpath>``: found on the search path or downloaded into the cache."""
    found = _find_file(spec, relpath)
    if found is not None:
        return found
    folder = cache_root() / spec.folder
    source = spec.archive if spec.archive is not None else relpath
    if source not in spec.downloads or source not in spec.sha256:
        roots = ", ".join(str(root / spec.folder) for root in search_roots())
        raise DataError(
            f"dataset {spec.name!r}: {relpath} not found in {roots}, and there is no "
            f"checked download for it; get it from {spec.url} and put it in one of those "
            "folders (or point $SEQLAB_DATA at a folder holding "
            f"{spec.folder}/{relpath})"
        )
    fetched = download(spec.downloads[source], folder / source, spec.sha256[source])
    if spec.archive is not None:
        _extract(fetched, folder)
    path = folder / relpath
    if not path.is_file():
        raise DataError(f"dataset {spec.name!r}: {source} does not contain {relpath}")
    return path


# --------------------------------------------------------------------------- public API


def resolve(name_or_path: str | os.PathLike[str], role: str | None = None) -> Path:
    """A dataset file by dataset name and role, or an existing file path as given.

    ``resolve("ptb", "train")`` finds (or downloads) PTB's training text. With no role, a
    one-file dataset gives its file and other datasets their folder (``dataset_dir``).
    ``role`` is ignored for paths. An unknown name or a missing path is a DataError.
    """
    text = str(name_or_path)
    if text in DATASETS:
        spec = DATASETS.get(text)
        if role is None and len(spec.files) != 1:
            return dataset_dir(text)
        return fetch(spec, spec.file(role if role is not None else next(iter(spec.files))))
    path = Path(text).expanduser()
    if path.exists():
        return path
    if os.sep in text or "/" in text or "." in text:
        raise DataError(f"{text}: no such file")
    close = difflib.get_close_matches(text, DATASETS.names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(DATASETS.names())
    raise DataError(f"{text!r} is neither a file nor a known dataset{hint} (known: {known})")


def dataset_dir(name: str) -> Path:
    """The first folder on the search path that holds dataset ``name``.

    If none does, every file with a checked download is fetched into the cache and the
    cache folder is returned; otherwise it is a DataError saying where to put the files.
    """
    spec = DATASETS.get(name)
    found = _find_dir(spec)
    if found is not None:
        return found
    for relpath in spec.files.values():
        fetch(spec, relpath)
    return cache_root() / spec.folder


def verify(name: str) -> dict[str, bool]:
    """For every file with a known sha256: is it present with exactly those bytes?"""
    spec = DATASETS.get(name)
    results: dict[str, bool] = {}
    for relpath, expected in sorted(spec.sha256.items()):
        path = _find_file(spec, relpath)
        results[relpath] = path is not None and sha256_of(path) == expected
    return results


def _where(spec: DatasetSpec) -> str:
    found = _find_dir(spec)
    if found is not None:
        return str(found)
    bundled = [_find_file(spec, relpath) for relpath in spec.bundled]
    return str(bundled[0]) if bundled and bundled[0] is not None else "not found"


def info(name: str) -> dict[str, Any]:
    """Everything about one dataset, as plain JSON-ready values (``seqlab data info``)."""
    spec = DATASETS.get(name)
    files = []
    for role, relpath in spec.files.items():
        path = _find_file(spec, relpath)
        files.append(
            {
                "role": role,
                "file": relpath,
                "path": str(path) if path is not None else None,
                "bytes": path.stat().st_size if path is not None else None,
                "sha256": spec.sha256.get(relpath),
                "download": spec.downloads.get(spec.archive or relpath),
            }
        )
    return {
        "name": spec.name,
        "description": spec.description,
        "licence": spec.licence,
        "url": spec.url,
        "citation": spec.citation,
        "folder": spec.folder,
        "where": _where(spec),
        "files": files,
    }


def list_datasets() -> list[dict[str, str]]:
    """One row per dataset: name, description, licence and where it was found."""
    rows = []
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        rows.append(
            {
                "name": name,
                "description": spec.description,
                "licence": spec.licence,
                "where": _where(spec),
            }
        )
    return rows
