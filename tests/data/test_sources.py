import hashlib
import re
import zipfile
from pathlib import Path

import pytest

from seqlab.data import sources
from seqlab.data.catalogue import DATASETS, DatasetSpec
from seqlab.data.sources import dataset_dir, fetch, info, list_datasets, resolve, verify
from seqlab.errors import DataError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared/data is not beside the repo")

NAMES = {
    "ptb",
    "wikitext2",
    "tinyshakespeare",
    "ud_english_ewt",
    "sst",
    "rt_polarity",
    "multi30k",
    "babi",
    "babi10k",
    "word_similarity",
    "fsdd",
}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or fills the user's real cache or $SEQLAB_DATA."""
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEQLAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec_for(folder: str, **fields) -> DatasetSpec:
    return DatasetSpec(
        name="toy",
        description="a toy dataset",
        folder=folder,
        licence="CC0",
        url="https://example.org/toy",
        citation="nobody",
        **fields,
    )


def test_registry_lists_every_dataset_with_consistent_tables():
    assert set(DATASETS.names()) == NAMES
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        assert spec.name == name
        assert set(spec.downloads) <= set(spec.sha256)
        assert set(spec.sha256) <= {*spec.files.values(), spec.archive}
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in spec.sha256.values())
        if spec.archive is None:
            unchecked = {role for role, f in spec.files.items() if f not in spec.sha256}
            assert unchecked == ({"qa3_train"} if name == "babi10k" else set())


def test_plain_paths_resolve_to_themselves(tmp_path: Path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello\n", encoding="utf-8")
    assert resolve(str(corpus)) == corpus
    assert resolve("corpus.txt") == Path("corpus.txt")
    with pytest.raises(DataError, match=r"missing\.txt: no such file"):
        resolve("missing.txt")


def test_unknown_name_lists_known_names_and_the_closest():
    with pytest.raises(DataError, match=r"'ptbb' is neither a file.*did you mean 'ptb'.*babi10k"):
        resolve("ptbb")


def test_unknown_role_lists_roles():
    with pytest.raises(DataError, match=r"no file 'tran'; did you mean 'train'.*valid"):
        resolve("ptb", "tran")


def test_seqlab_data_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    mine = tmp_path / "mydata" / "ptb" / "ptb.train.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text(" a b \n", encoding="utf-8")
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "mydata"))
    assert resolve("ptb", "train") == mine.resolve()
    assert dataset_dir("ptb") == mine.parent.resolve()


def test_shared_data_beside_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    dev = tmp_path / "shared" / "data" / "sst" / "dev.txt"
    dev.parent.mkdir(parents=True)
    dev.write_text("(2 x)\n", encoding="utf-8")
    (tmp_path / "clone").mkdir()
    monkeypatch.chdir(tmp_path / "clone")
    assert resolve("sst", "dev") == dev.resolve()


def test_bundled_tinyshakespeare_is_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sources, "search_roots", lambda: [tmp_path])
    path = resolve("tinyshakespeare")
    assert path.name == "tinyshakespeare.txt" and path.parent.name == "resources"
    assert sha256(path.read_bytes()) == DATASETS.get("tinyshakespeare").sha256["input.txt"]
    assert verify("tinyshakespeare") == {"input.txt": True}


def test_download_into_cache_checks_sha256(tmp_path: Path):
    payload = b"the cat sat\n"
    upstream = tmp_path / "upstream" / "train.txt"
    upstream.parent.mkdir()
    upstream.write_bytes(payload)
    spec = spec_for(
        "toy-good",
        files={"train": "train.txt"},
        sha256={"train.txt": sha256(payload)},
        downloads={"train.txt": upstream.as_uri()},
    )
    path = fetch(spec, "train.txt")
    assert path == tmp_path / "cache" / "toy-good" / "train.txt"
    assert path.read_bytes() == payload
    upstream.unlink()  # found in the cache now: no second download
    assert fetch(spec, "train.txt") == path
    assert [p.name for p in path.parent.iterdir()] == ["train.txt"]


def test_download_with_wrong_sha256_is_discarded(tmp_path: Path):
    upstream = tmp_path / "train.txt"
    upstream.write_bytes(b"tampered\n")
    expected = sha256(b"original\n")
    spec = spec_for(
        "toy-bad",
        files={"train": "train.txt"},
        sha256={"train.txt": expected},
        downloads={"train.txt": upstream.as_uri()},
    )
    with pytest.raises(DataError) as error:
        fetch(spec, "train.txt")
    message = str(error.value)
    assert "train.txt" in message and expected in message
    assert sha256(b"tampered\n") in message
    folder = tmp_path / "cache" / "toy-bad"
    assert list(folder.iterdir()) == []  # neither the file nor a temporary part


def test_unreachable_download_is_a_data_error(tmp_path: Path):
    spec = spec_for(
        "toy-gone",
        files={"train": "train.txt"},
        sha256={"train.txt": sha256(b"")},
        downloads={"train.txt": (tmp_path / "nowhere.txt").as_uri()},
    )
    with pytest.raises(DataError, match="could not download .*nowhere.txt"):
        fetch(spec, "train.txt")


def test_archive_download_is_unpacked(tmp_path: Path):
    archive = tmp_path / "toy.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("toy/train.tokens", "one two\n")
        zipped.writestr("toy/test.tokens", "three\n")
    spec = spec_for(
        "toy-zip",
        files={"train": "toy/train.tokens", "test": "toy/test.tokens"},
        sha256={"toy.zip": sha256(archive.read_bytes())},
        downloads={"toy.zip": archive.as_uri()},
        archive="toy.zip",
    )
    train = fetch(spec, "toy/train.tokens")
    assert train.read_text(encoding="utf-8") == "one two\n"
    assert (train.parent / "test.tokens").is_file()
    assert sorted(p.name for p in (tmp_path / "cache" / "toy-zip").iterdir()) == ["toy", "toy.zip"]


def test_missing_file_without_download_says_what_to_do():
    with pytest.raises(DataError) as error:
        resolve("babi10k", "qa3_train")
    message = str(error.value)
    assert "qa3_three-supporting-facts_train.txt not found" in message
    assert "SEQLAB_DATA" in message and "tasks_1-20_v1-2.tar.gz" in message


def test_list_datasets_reports_where_each_is():
    rows = {row["name"]: row for row in list_datasets()}
    assert set(rows) == NAMES
    assert rows["wikitext2"]["where"] == "not found"
    assert rows["ud_english_ewt"]["licence"] == "CC BY-SA 4.0"
    assert rows["tinyshakespeare"]["where"] != "not found"  # shared/data or bundled


@needs_shared
def test_info_describes_files_found_in_shared_data():
    about = info("ptb")
    assert about["where"] == str((SHARED / "ptb").resolve())
    assert [f["role"] for f in about["files"]] == ["train", "valid", "test"]
    assert about["files"][0]["bytes"] == 5101618
    assert about["files"][0]["download"].endswith("/data/ptb.train.txt")


@needs_shared
def test_every_shared_file_matches_its_sha256():
    for name in DATASETS.names():
        if name != "wikitext2":
            results = verify(name)
            assert results and all(results.values()), (name, results)


@needs_shared
def test_verify_detects_a_changed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    changed = tmp_path / "mydata" / "sst" / "dev.txt"
    changed.parent.mkdir(parents=True)
    changed.write_text("(2 changed)\n", encoding="utf-8")
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "mydata"))
    assert verify("sst") == {"dev.txt": False, "test.txt": True, "train.txt": True}
