"""get_file: caching, checksums, atomic downloads, the offline error, checked extraction."""

import io
import os
import stat
import tarfile
import tempfile
import zipfile

import pytest

from dataset_files import md5, sha256, tar_gz
from pyminidl.training import progbar
from pyminidl.utils import file_utils, get_file
from pyminidl.utils.file_utils import DownloadError


def _payload(origin_dir, name="data.bin", size=200_000):
    path = origin_dir / name
    path.write_bytes(bytes(range(256)) * (size // 256) + b"tail")
    return path


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _touch(path):
    with open(path, "w"):
        pass


def _cache_files(home):
    """Every file and folder under the cache, relative to it (hidden temp files included)."""
    root = home / "datasets"
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files)


def test_file_origin_downloads_into_pyminidl_home(home, origin_dir, capsys):
    src = _payload(origin_dir)
    path = get_file("data.bin", origin=src.as_uri(), file_hash=sha256(src))
    assert path == str(home / "datasets" / "data.bin")
    assert _read(path) == src.read_bytes()
    out = capsys.readouterr().out
    assert f"Downloading data from {src.as_uri()}" in out and f"{src.stat().st_size}/{src.stat().st_size}" in out
    assert _cache_files(home) == ["data.bin"]


def test_fname_defaults_to_the_origins_basename(home, origin_dir):
    src = _payload(origin_dir, "named.txt", 10)
    assert get_file(origin=src.as_uri()) == str(home / "datasets" / "named.txt")


def test_http_download_is_cached_and_reused(home, origin_dir, http_origin):
    src = _payload(origin_dir)
    first = get_file("data.bin", origin=http_origin.url("data.bin"), file_hash=sha256(src))
    second = get_file("data.bin", origin=http_origin.url("data.bin"), file_hash=sha256(src))
    assert first == second and _read(first) == src.read_bytes()
    assert len(http_origin.requests) == 1
    get_file("data.bin", origin=http_origin.url("data.bin"), file_hash=sha256(src), force_download=True)
    assert len(http_origin.requests) == 2


def test_md5_hash_of_32_hex_digits_is_accepted(home, origin_dir):
    src = _payload(origin_dir)
    assert os.path.exists(get_file("data.bin", origin=src.as_uri(), file_hash=md5(src)))
    assert os.path.exists(get_file("m.bin", origin=src.as_uri(), md5_hash=md5(src)))


@pytest.mark.parametrize("bad", ["abc", "z" * 64, "0" * 40])
def test_malformed_hash_is_refused_before_downloading(home, origin_dir, bad):
    src = _payload(origin_dir)
    with pytest.raises(ValueError, match="file_hash"):
        get_file("data.bin", origin=src.as_uri(), file_hash=bad)
    assert _cache_files(home) == []


def test_checksum_mismatch_raises_and_leaves_the_cache_clean(home, origin_dir, http_origin):
    src = _payload(origin_dir)
    wrong = "0" * 64
    with pytest.raises(ValueError, match="hash does not match the provided value of " + wrong) as err:
        get_file("data.bin", origin=http_origin.url("data.bin"), file_hash=wrong)
    assert sha256(src) in str(err.value)  # the hash received is named
    assert _cache_files(home) == []


def test_corrupt_cached_file_is_downloaded_again(home, origin_dir, http_origin, capsys):
    src = _payload(origin_dir)
    path = get_file("data.bin", origin=http_origin.url("data.bin"), file_hash=sha256(src))
    with open(path, "r+b") as f:
        f.write(b"XXXX")
    assert get_file("data.bin", origin=http_origin.url("data.bin"), file_hash=sha256(src)) == path
    assert _read(path) == src.read_bytes()
    assert len(http_origin.requests) == 2
    assert "will re-download the data" in capsys.readouterr().out


@pytest.mark.parametrize("with_hash", [True, False])
def test_truncated_download_raises_and_leaves_the_cache_clean(home, origin_dir, http_origin, with_hash):
    src = _payload(origin_dir)
    http_origin.truncate["data.bin"] = 1000
    with pytest.raises(DownloadError, match="cut short") as err:
        get_file("data.bin", origin=http_origin.url("data.bin"), file_hash=sha256(src) if with_hash else None)
    assert "received 1000 of" in str(err.value)
    assert _cache_files(home) == []


def test_offline_error_names_url_and_path_and_a_file_placed_there_is_used(home, origin_dir, closed_port_url):
    src = _payload(origin_dir)
    url = closed_port_url("data.bin")
    target = home / "datasets" / "data.bin"
    with pytest.raises(DownloadError) as err:
        get_file("data.bin", origin=url, file_hash=sha256(src))
    message = str(err.value)
    assert url in message and str(target) in message and sha256(src) in message
    assert _cache_files(home) == []
    target.write_bytes(src.read_bytes())  # placed by hand, as the message says
    assert get_file("data.bin", origin=url, file_hash=sha256(src)) == str(target)


def test_missing_file_and_http_404_are_download_errors(home, origin_dir, http_origin):
    with pytest.raises(DownloadError, match="404"):
        get_file("nope.bin", origin=http_origin.url("nope.bin"))
    with pytest.raises(DownloadError, match="nope.bin"):
        get_file("nope2.bin", origin=(origin_dir / "nope.bin").as_uri())
    assert _cache_files(home) == []


def test_interrupted_download_leaves_no_partial_file(home, origin_dir, monkeypatch):
    src = _payload(origin_dir)

    def interrupt(self, current, values=None, finalize=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(progbar.Progbar, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        get_file("data.bin", origin=src.as_uri())
    assert _cache_files(home) == []


def test_unwritable_home_falls_back_to_the_temp_dir(tmp_path, origin_dir, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PYMINIDL_HOME", str(blocker / "home"))  # cannot be created (even as root)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    src = _payload(origin_dir, size=10)
    path = get_file("data.bin", origin=src.as_uri())
    assert path == str(tmp_path / "tmp" / ".pyminidl" / "datasets" / "data.bin")


def test_cache_dir_and_absolute_cache_subdir(tmp_path, home, origin_dir):
    src = _payload(origin_dir, size=10)
    assert get_file("a.bin", origin=src.as_uri(), cache_dir=str(tmp_path / "c")) == str(tmp_path / "c" / "datasets" / "a.bin")
    assert get_file("b.bin", origin=src.as_uri(), cache_subdir=str(tmp_path / "abs")) == str(tmp_path / "abs" / "b.bin")


def test_bad_arguments_are_refused(home):
    with pytest.raises(ValueError, match="origin"):
        get_file("x.bin")
    with pytest.raises(ValueError, match="Received: fname=sub/x.bin"):
        get_file("sub/x.bin", origin="file:///x")
    with pytest.raises(ValueError, match="hash_algorithm"):
        get_file("x.bin", origin="file:///x", hash_algorithm="sha1")
    with pytest.raises(ValueError, match="fname"):
        get_file(origin="http://example.invalid/")


# ---- extraction -------------------------------------------------------------------------


def _tar_with(path, build):
    with tarfile.open(path, "w:gz") as tar:
        build(tar)
    return path


def _add(tar, name, body=b"", **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(body)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(body) if body else None)


def test_extract_tar_gz_names_as_keras(home, origin_dir):
    src = origin_dir / "pack.tar.gz"
    tar_gz(src, {"pack/a.txt": b"alpha", "pack/sub/b.txt": b"beta"})
    folder = get_file("pack", origin=src.as_uri(), extract=True, file_hash=sha256(src))
    assert folder == str(home / "datasets" / "pack")
    assert _read(os.path.join(folder, "pack", "sub", "b.txt")) == b"beta"
    assert os.path.exists(home / "datasets" / "pack_archive")
    dotted = get_file("pack.tar.gz", origin=src.as_uri(), extract=True)
    assert dotted == str(home / "datasets" / "pack_extracted")
    assert os.path.exists(home / "datasets" / "pack.tar.gz")
    assert get_file("legacy", origin=src.as_uri(), untar=True) == str(home / "datasets" / "legacy")
    assert sorted(n for n in _cache_files(home) if n.count(os.sep) == 0) == [
        "legacy", "legacy_archive", "pack", "pack.tar.gz", "pack_archive", "pack_extracted"]


def test_extraction_is_reused_and_redone_atomically_on_force_download(home, origin_dir):
    src = origin_dir / "pack.tar.gz"
    tar_gz(src, {"pack/a.txt": b"alpha"})
    folder = get_file("pack", origin=src.as_uri(), extract=True)
    _touch(os.path.join(folder, "sentinel"))
    assert get_file("pack", origin=src.as_uri(), extract=True) == folder
    assert os.path.exists(os.path.join(folder, "sentinel"))  # complete extraction kept
    get_file("pack", origin=src.as_uri(), extract=True, force_download=True)
    assert not os.path.exists(os.path.join(folder, "sentinel"))
    assert _read(os.path.join(folder, "pack", "a.txt")) == b"alpha"
    assert not [n for n in os.listdir(home / "datasets") if n.startswith(".")]


def test_extract_zip_and_links_inside_the_folder(home, origin_dir):
    src = origin_dir / "z.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("z/one.txt", b"1")
        z.writestr("z/deep/two.txt", b"2")
    folder = get_file("z", origin=src.as_uri(), extract=True)
    assert _read(os.path.join(folder, "z", "deep", "two.txt")) == b"2"

    def build(tar):
        _add(tar, "t/real.txt", b"real")
        _add(tar, "t/sub/link.txt", type=tarfile.SYMTYPE, linkname="../real.txt")
        _add(tar, "t/hard.txt", type=tarfile.LNKTYPE, linkname="t/real.txt")
        _add(tar, "t/alias.txt", type=tarfile.SYMTYPE, linkname="real.txt")
        _add(tar, "t/alias.txt", b"replaces the link, not real.txt")

    src = _tar_with(origin_dir / "t.tar.gz", build)
    folder = get_file("t", origin=src.as_uri(), extract=True)
    assert os.path.islink(os.path.join(folder, "t", "sub", "link.txt"))
    assert _read(os.path.join(folder, "t", "sub", "link.txt")) == b"real"
    assert _read(os.path.join(folder, "t", "hard.txt")) == b"real"
    assert _read(os.path.join(folder, "t", "real.txt")) == b"real"
    assert not os.path.islink(os.path.join(folder, "t", "alias.txt"))


MALICIOUS_TARS = {
    "absolute path": lambda tar: _add(tar, "/tmp/pyminidl_evil_abs.txt", b"x"),
    "dot-dot": lambda tar: _add(tar, "ok/../../evil.txt", b"x"),
    "symlink out (relative)": lambda tar: _add(tar, "link", type=tarfile.SYMTYPE, linkname="../../outside"),
    "symlink out (absolute)": lambda tar: _add(tar, "link", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
    "symlink chain out": lambda tar: (
        _add(tar, "d", type=tarfile.SYMTYPE, linkname="."), _add(tar, "d2", type=tarfile.SYMTYPE, linkname="../.."),
        _add(tar, "d2/evil.txt", b"x")),
    "hard link out": lambda tar: _add(tar, "hard", type=tarfile.LNKTYPE, linkname="../../etc/passwd"),
    "device file": lambda tar: _add(tar, "dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
    "fifo": lambda tar: _add(tar, "fifo", type=tarfile.FIFOTYPE),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_TARS))
def test_malicious_tar_is_refused_and_leaves_the_cache_clean(home, origin_dir, tmp_path, case):
    src = _tar_with(origin_dir / "evil.tar.gz", lambda tar: (_add(tar, "good.txt", b"fine"), MALICIOUS_TARS[case](tar)))
    with pytest.raises(ValueError, match="Refusing to extract"):
        get_file("evil", origin=src.as_uri(), extract=True)
    assert _cache_files(home) == []
    assert not os.path.exists("/tmp/pyminidl_evil_abs.txt")
    assert not (tmp_path / "evil.txt").exists() and not (home / "evil.txt").exists()


@pytest.mark.parametrize("name", ["/abs.txt", "../up.txt", "a/../../up.txt", "C:/win.txt"])
def test_malicious_zip_is_refused_and_leaves_the_cache_clean(home, origin_dir, name):
    src = origin_dir / "evil.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("good.txt", b"fine")
        z.writestr(zipfile.ZipInfo(name), b"x")  # ZipInfo keeps the name as given
    with pytest.raises(ValueError, match="Refusing to extract"):
        get_file("evil", origin=src.as_uri(), extract=True)
    assert _cache_files(home) == []


def test_zip_device_entry_is_refused(home, origin_dir):
    src = origin_dir / "dev.zip"
    info = zipfile.ZipInfo("dev")
    info.external_attr = (stat.S_IFCHR | 0o644) << 16
    with zipfile.ZipFile(src, "w") as z:
        z.writestr(info, b"")
    with pytest.raises(ValueError, match="device"):
        get_file("dev", origin=src.as_uri(), extract=True)


class _Zeros(io.RawIOBase):
    def readable(self):
        return True

    def readinto(self, b):
        b[:] = bytes(len(b))
        return len(b)


def test_archive_bomb_is_refused_by_the_compression_ratio(home, origin_dir, monkeypatch):
    monkeypatch.setattr(file_utils, "MIN_EXTRACTED_LIMIT", 1 << 20)
    size = 8 << 20  # 8 MiB of zeros compress to ~8 KiB: a ratio of ~1000

    def build(tar):
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros()))

    src = _tar_with(origin_dir / "bomb.tar.gz", build)
    assert src.stat().st_size * file_utils.MAX_COMPRESSION_RATIO < size
    with pytest.raises(ValueError, match="archive bomb"):
        get_file("bomb", origin=src.as_uri(), extract=True)
    assert _cache_files(home) == []


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_archive_over_the_absolute_cap_is_refused(home, origin_dir, monkeypatch, kind):
    monkeypatch.setattr(file_utils, "MAX_EXTRACTED_BYTES", 10_000)
    src = origin_dir / f"big.{kind}"
    body = os.urandom(6_000)  # incompressible: the ratio rule alone would let it through
    if kind == "tar":
        tar_gz(src, {"a.bin": body, "b.bin": body})
    else:
        with zipfile.ZipFile(src, "w") as z:
            z.writestr("a.bin", body)
            z.writestr("b.bin", body)
    with pytest.raises(ValueError, match="size cap of 10000 bytes"):
        get_file("big", origin=src.as_uri(), extract=True)
    assert _cache_files(home) == []


def test_failed_extraction_keeps_the_previous_folder(tmp_path):
    good, evil, target = tmp_path / "good.tar.gz", tmp_path / "evil.tar.gz", tmp_path / "out"
    tar_gz(good, {"a.txt": b"alpha"})
    _tar_with(evil, lambda tar: (_add(tar, "b.txt", b"beta"), _add(tar, "../c.txt", b"x")))
    assert file_utils.extract_archive(str(good), str(target))
    with pytest.raises(ValueError, match="'..' component"):
        file_utils.extract_archive(str(evil), str(target))
    assert sorted(os.listdir(target)) == ["a.txt"]
    assert sorted(os.listdir(tmp_path)) == ["evil.tar.gz", "good.tar.gz", "out"]


def test_not_an_archive_warns_as_keras(home, origin_dir):
    src = origin_dir / "plain.bin"
    src.write_bytes(b"just bytes")
    with pytest.warns(UserWarning, match="Could not extract"):
        folder = get_file("plain", origin=src.as_uri(), extract=True)
    assert not os.path.exists(folder)


def test_corrupt_archive_is_a_value_error(home, origin_dir):
    src = origin_dir / "cut.tar.gz"
    tar_gz(src, {"a.bin": os.urandom(50_000)})
    src.write_bytes(src.read_bytes()[:20_000])
    with pytest.raises(ValueError, match="corrupt"):
        get_file("cut", origin=src.as_uri(), extract=True, archive_format="tar")
    assert _cache_files(home) == []


def test_hash_file_and_validate_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_utils.hash_file(path) == file_utils.hash_file(path, "auto") == sha256(path)
    assert file_utils.hash_file(path, "md5") == md5(path)
    assert file_utils.validate_file(path, md5(path)) and file_utils.validate_file(path, sha256(path).upper())
    assert not file_utils.validate_file(path, "0" * 64)
    with pytest.raises(ValueError, match="algorithm='sha1'"):
        file_utils.hash_file(path, "sha1")
