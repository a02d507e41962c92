"""Downloading and caching files: ``get_file`` (Keras 3's ``keras.utils.get_file``).

Files are cached under ``~/.pyminidl/datasets`` (``$PYMINIDL_HOME/datasets`` when that
variable is set; a home that cannot be written falls back, as Keras's does, to
``<tempdir>/.pyminidl``). What differs from Keras is what can go wrong:

- A download goes to a temporary file beside its target, is checked against the hash
  given, and only then renamed into place (``os.replace``), so a partial, truncated or
  corrupt file is never left in the cache nor returned. A cached file whose hash does
  not match is downloaded again.
- When the origin cannot be reached, the error names the URL and the exact path where
  the file may be placed by hand (with the hash it must have).
- Archives are checked member by member before anything is written: absolute paths,
  ``..`` components, links that leave the folder, device files and archives that expand
  beyond a size cap are refused with a ``ValueError``. Extraction goes to a temporary
  folder that is renamed into place once complete, so a failed one leaves nothing.
"""

import hashlib
import ntpath
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib

from pyminidl.saving.file_io import atomic_write
from pyminidl.training.progbar import Progbar

# Archive-bomb guards: an archive may expand to at most MAX_COMPRESSION_RATIO times its
# own size (real datasets: images ~1x, text ~5x; a bomb is ~1000x), never beyond
# MAX_EXTRACTED_BYTES, and always up to MIN_EXTRACTED_LIMIT (small archives of headers
# and padding compress far better than their content). Every member also counts a
# 512-byte header, so millions of empty members cannot slip under the cap.
MAX_EXTRACTED_BYTES = 64 * 2**30
MAX_COMPRESSION_RATIO = 200
MIN_EXTRACTED_LIMIT = 64 * 2**20
_MEMBER_OVERHEAD = 512

# Seconds a stalled connection may stay silent before the download fails (no hang offline).
DOWNLOAD_TIMEOUT = 60
_CHUNK = 1 << 16
_HEX = re.compile(r"^[0-9a-fA-F]+$")


class DownloadError(OSError):
    """A file could not be fetched from its origin (offline, HTTP error, truncated).

    An ``OSError``; the message names the URL and the path where the file may be placed.

    Example:
        >>> try: get_file("x.npz", origin="https://unreachable.example/x.npz")
        ... except DownloadError as e: print(e)
    """


def pyminidl_home():
    """The cache root: ``$PYMINIDL_HOME`` if set, else ``~/.pyminidl``.

    Example:
        >>> pyminidl.utils.file_utils.pyminidl_home()
        '/home/me/.pyminidl'
    """
    return os.environ.get("PYMINIDL_HOME") or os.path.join(os.path.expanduser("~"), ".pyminidl")


def get_file(
    fname=None,
    origin=None,
    untar=False,
    md5_hash=None,
    file_hash=None,
    cache_subdir="datasets",
    hash_algorithm="auto",
    extract=False,
    archive_format="auto",
    cache_dir=None,
    force_download=False,
):
    """Downloads a file from a URL if it is not already in the cache (Keras 3 semantics).

    The file at ``origin`` is saved as ``cache_dir/cache_subdir/fname``; by default
    ``~/.pyminidl/datasets/fname``. With ``extract=True`` a tar or zip archive is
    extracted, members checked, into a folder beside it and that folder is returned.

    Args:
        fname: Local file name; None takes the name from ``origin``. With ``extract``, a
            name without a ``.`` names the extraction folder (the archive is kept as
            ``fname + "_archive"``); a name with one names the archive, and the folder is
            ``<name up to the first ".">_extracted``.
        origin: URL of the file (``https://``, ``http://`` or ``file://``).
        untar: Deprecated alias of ``extract=True, archive_format="tar"``.
        md5_hash: Deprecated; an MD5 ``file_hash``.
        file_hash: Expected hex digest of the file. Strongly recommended: without it a
            truncated download of unknown length cannot be detected.
        cache_subdir: Subfolder of ``cache_dir``; an absolute path is used as it is.
        hash_algorithm: ``"auto"`` (32 hex digits: MD5, as in Keras; otherwise SHA-256),
            ``"md5"`` or ``"sha256"``.
        extract: Whether to extract the archive.
        archive_format: ``"auto"`` (tar then zip), ``"tar"``, ``"zip"``, a list of them, or None.
        cache_dir: Cache root; None means ``$PYMINIDL_HOME`` or ``~/.pyminidl``.
        force_download: Download again even when a valid file is cached.

    Returns:
        Path to the downloaded file, or to the extraction folder with ``extract``.

    Raises:
        ValueError: Missing ``origin``, a bad ``fname`` or hash, a downloaded file whose
            hash does not match, or an unsafe archive member.
        DownloadError: The origin could not be reached or the transfer was cut short;
            the message names the path where the file may be placed by hand.

    Example:
        >>> path = pyminidl.utils.get_file(
        ...     origin="https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
        ...     file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    algorithm = _resolve_algorithm(hash_algorithm, file_hash)
    datadir = _cache_datadir(cache_dir, cache_subdir)
    download_target, extraction_dir = _targets(fname, origin, extract or untar, datadir)

    fetched = _needs_download(download_target, file_hash, algorithm, force_download)
    if fetched:
        _download(origin, download_target, file_hash, algorithm)
    if not (extract or untar):
        return download_target
    if os.path.isdir(extraction_dir) and not fetched:
        return extraction_dir  # extraction is atomic: an existing folder is a complete one
    _extract_cached(download_target, extraction_dir, "tar" if untar else archive_format, fetched)
    return extraction_dir


def _extract_cached(archive, extraction_dir, archive_format, fetched):
    try:
        extracted = extract_archive(archive, extraction_dir, archive_format)
    except (ValueError, tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        if fetched:
            os.remove(archive)  # a refused archive just downloaded leaves nothing in the cache
        if isinstance(e, ValueError):
            raise
        raise ValueError(f"Could not extract {archive}: the archive is corrupt ({e}).") from e
    if not extracted:
        warnings.warn(f"Could not extract archive {archive}: not a tar or zip file.", stacklevel=3)


def _resolve_algorithm(hash_algorithm, file_hash):
    if hash_algorithm not in ("auto", "md5", "sha256"):
        raise ValueError(f"hash_algorithm must be 'auto', 'md5' or 'sha256'. Received: hash_algorithm={hash_algorithm!r}")
    if file_hash is None:
        return "sha256" if hash_algorithm == "auto" else hash_algorithm
    if not isinstance(file_hash, str) or not _HEX.match(file_hash):
        raise ValueError(f"file_hash must be a hex digest string. Received: file_hash={file_hash!r}")
    if hash_algorithm == "auto":
        if len(file_hash) not in (32, 64):
            raise ValueError(
                "file_hash must have 32 (MD5) or 64 (SHA-256) hex digits. "
                f"Received: file_hash={file_hash!r} ({len(file_hash)} digits)"
            )
        return "md5" if len(file_hash) == 32 else "sha256"
    return hash_algorithm


def _cache_datadir(cache_dir, cache_subdir):
    base = os.path.expanduser(cache_dir if cache_dir is not None else pyminidl_home())
    datadir = os.path.join(base, cache_subdir)
    if not _writable_dir(datadir):
        # As Keras: an unwritable home (read-only container, no $HOME) caches in the temp dir.
        datadir = os.path.join(tempfile.gettempdir(), ".pyminidl", cache_subdir)
        os.makedirs(datadir, exist_ok=True)
    return datadir


def _writable_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _targets(fname, origin, extract, datadir):
    """(download_target, extraction_dir) exactly as Keras 3 names them."""
    provided = fname is not None and os.fspath(fname) != ""
    fname = os.fspath(fname) if provided else os.path.basename(urllib.parse.urlsplit(origin).path)
    if not fname:
        raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'. Please specify the `fname` argument.")
    if os.sep in fname or "/" in fname or fname in (".", ".."):
        raise ValueError(
            "Paths are not accepted as the `fname` argument. To specify the file's parent "
            f"directory, use the `cache_dir` argument. Received: fname={fname}"
        )
    if not extract:
        return os.path.join(datadir, fname), None
    if provided and "." in fname:
        stem = fname[: fname.find(".")]
        return os.path.join(datadir, fname), os.path.join(datadir, f"{stem}_extracted")
    return os.path.join(datadir, f"{fname}_archive"), os.path.join(datadir, fname)


def _needs_download(target, file_hash, algorithm, force_download):
    if force_download or not os.path.exists(target):
        return True
    if file_hash is not None and not validate_file(target, file_hash, algorithm):
        print(
            "A local file was found, but it seems to be incomplete or outdated because the "
            f"{algorithm} file hash does not match the original value of {file_hash} so we "
            "will re-download the data."
        )
        return True
    return False


def _download(origin, target, file_hash, algorithm):
    """Fetch into a temp file beside ``target``, verify it, then rename it into place (``atomic_write``)."""
    print(f"Downloading data from {origin}")
    with atomic_write(target, "wb") as out:
        _fetch(origin, out, target, file_hash, algorithm)
        if file_hash is not None:
            out.flush()
            actual = hash_file(out.name, algorithm)
            if actual != file_hash.lower():
                raise ValueError(
                    f"Incomplete or corrupted file detected. The {algorithm} file hash does not "
                    f"match the provided value of {file_hash}. Received: {actual} from {origin}. "
                    f"Nothing was written to {target}."
                )


def _fetch(origin, out, target, file_hash, algorithm):
    """Stream ``origin`` into the open file ``out`` with a progress bar."""
    try:
        with urllib.request.urlopen(origin, timeout=DOWNLOAD_TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = Progbar(total)
            received = 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(received, finalize=False)
            if total is not None and received < total:
                raise DownloadError(
                    f"URL fetch failure on {origin}: the transfer was cut short "
                    f"(received {received} of {total} bytes).{_by_hand(origin, target, file_hash, algorithm)}"
                )
            bar.update(received, finalize=True)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"URL fetch failure on {origin}: {e.code} -- {e.msg}.{_by_hand(origin, target, file_hash, algorithm)}") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"URL fetch failure on {origin}: {e.reason}.{_by_hand(origin, target, file_hash, algorithm)}") from e
    except (OSError, ValueError) as e:
        if isinstance(e, DownloadError):
            raise
        # Socket timeouts, resets mid-transfer, and http.client's IncompleteRead/bad status.
        raise DownloadError(f"URL fetch failure on {origin}: {e!r}.{_by_hand(origin, target, file_hash, algorithm)}") from e


def _by_hand(origin, target, file_hash, algorithm):
    check = f" Its {algorithm} hash must be {file_hash}." if file_hash else ""
    return (
        f" If this machine is offline, download {origin} on another machine and place the file "
        f"at {target}; the next call will use it.{check}"
    )


def hash_file(fpath, algorithm="sha256", chunk_size=65535):
    """The hex digest of a file: ``"sha256"`` (also for ``"auto"``), ``"md5"``, or a hashlib object.

    Example:
        >>> hash_file("/path/to/file.zip")
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    if isinstance(algorithm, str):
        if algorithm not in ("auto", "md5", "sha256"):
            raise ValueError(f"algorithm must be 'auto', 'md5' or 'sha256'. Received: algorithm={algorithm!r}")
        hasher = hashlib.md5() if algorithm == "md5" else hashlib.sha256()  # "auto": SHA-256
    else:
        hasher = algorithm
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=65535):
    """Whether the file's digest equals ``file_hash`` (``"auto"``: 32 hex digits mean MD5).

    Example:
        >>> validate_file("/path/to/file.zip", "e3b0c442...b855")
        True
    """
    algorithm = _resolve_algorithm(algorithm, file_hash)
    return hash_file(fpath, algorithm, chunk_size) == str(file_hash).lower()


def extract_archive(file_path, path=".", archive_format="auto"):
    """Extracts a tar or zip archive into the folder ``path``, atomically and checked.

    Every member is checked before it is written (see the module docstring); the archive
    is unpacked into a temporary folder beside ``path`` that replaces ``path`` once
    complete. On any error nothing is left behind and the previous ``path`` is intact.

    Args:
        file_path: The archive.
        path: The folder to create (replaced if it exists).
        archive_format: ``"auto"`` (``["tar", "zip"]``), ``"tar"``, ``"zip"``, a list, or None.

    Returns:
        True if the archive matched a format and was extracted, False otherwise.

    Raises:
        ValueError: An unsafe member, or contents beyond the size cap.

    Example:
        >>> extract_archive("data.tar.gz", "data")
        True
    """
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else [archive_format] if isinstance(archive_format, str) else list(archive_format)
    for fmt in formats:
        if fmt not in ("tar", "zip"):
            raise ValueError(f"archive_format must be 'auto', 'tar', 'zip' or None. Received: archive_format={fmt!r}")
        if (tarfile.is_tarfile if fmt == "tar" else zipfile.is_zipfile)(file_path):
            _extract_atomically(file_path, path, _extract_tar if fmt == "tar" else _extract_zip)
            return True
    return False


def _extract_atomically(file_path, path, extract_into):
    path = os.path.abspath(path)
    parent, name = os.path.dirname(path), os.path.basename(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=".extracting")
    try:
        limit = _size_limit(file_path)
        extract_into(file_path, staging, limit)
        old = None
        if os.path.lexists(path):
            old = tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=".old")
            os.replace(path, os.path.join(old, name))
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _size_limit(file_path):
    return min(MAX_EXTRACTED_BYTES, max(MIN_EXTRACTED_LIMIT, MAX_COMPRESSION_RATIO * os.path.getsize(file_path)))


class _Budget:
    """Counts bytes written against the extraction cap."""

    def __init__(self, archive, limit):
        self.archive, self.limit, self.used = archive, limit, 0

    def take(self, n, member):
        self.check(n, member)
        self.used += n

    def check(self, n, member):
        if self.used + n > self.limit:
            raise ValueError(
                f"Refusing to extract {self.archive}: its contents exceed the size cap of "
                f"{self.limit} bytes (reached at member '{member}'); it may be an archive bomb. "
                "Raise pyminidl.utils.file_utils.MAX_EXTRACTED_BYTES / MAX_COMPRESSION_RATIO "
                "if the archive is trusted."
            )


def _unsafe(archive, member, why):
    return ValueError(f"Refusing to extract {archive}: member '{member}' {why}.")


def _member_dest(root, name, archive):
    """The checked destination of member ``name`` under the real path ``root``."""
    if not name or "\x00" in name:
        raise _unsafe(archive, name, "has an empty or NUL-containing name")
    if name.startswith(("/", "\\")) or ntpath.splitdrive(name)[0] or os.path.isabs(name):
        raise _unsafe(archive, name, "has an absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise _unsafe(archive, name, "has a '..' component")
    # The folder is resolved (earlier symlink members included), the last component not:
    # a member replacing an earlier symlink replaces the link, never what it points to.
    head, tail = os.path.split(name.replace("\\", "/").rstrip("/"))
    folder = os.path.realpath(os.path.join(root, head))
    if not _inside(folder, root):
        raise _unsafe(archive, name, "resolves outside the extraction folder")
    return os.path.join(folder, tail)


def _inside(path, root):
    return path == root or path.startswith(root + os.sep)


def _write_stream(src, dest, budget, member):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        os.remove(dest)  # a duplicate member must not write through an earlier symlink
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    with os.fdopen(os.open(dest, flags, 0o644), "wb") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            budget.take(len(chunk), member)
            out.write(chunk)


def _extract_tar(file_path, root, limit):
    root = os.path.realpath(root)
    budget = _Budget(file_path, limit)
    with tarfile.open(file_path) as tar:
        for member in tar:  # headers are read lazily, so the cap also stops endless archives
            budget.take(_MEMBER_OVERHEAD, member.name)
            name = member.name.rstrip("/")
            if name in ("", "."):
                continue
            dest = _member_dest(root, name, file_path)
            if member.isdir():
                os.makedirs(dest, exist_ok=True)
            elif member.isfile():
                budget.check(member.size, member.name)  # refuse before decompressing a byte
                with tar.extractfile(member) as src:
                    _write_stream(src, dest, budget, member.name)
            elif member.issym() or member.islnk():
                _make_link(tar, member, dest, root, file_path)
            else:
                raise _unsafe(file_path, member.name, "is a device, FIFO or other special file")


def _make_link(tar, member, dest, root, archive):
    if member.linkname.startswith(("/", "\\")) or os.path.isabs(member.linkname):
        raise _unsafe(archive, member.name, f"links to an absolute path ({member.linkname})")
    # Symlinks resolve from their own folder; hard links name a member from the archive root.
    base = os.path.dirname(dest) if member.issym() else root
    target = os.path.realpath(os.path.join(base, member.linkname))
    if not _inside(target, root):
        raise _unsafe(archive, member.name, f"links outside the extraction folder ({member.linkname})")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        os.remove(dest)
    if member.issym():
        os.symlink(member.linkname, dest)
    elif os.path.isfile(target):
        shutil.copyfile(target, dest)  # a copy: a hard link could tie the cache to other files
    else:
        raise _unsafe(archive, member.name, f"is a hard link to a member not extracted before it ({member.linkname})")


def _extract_zip(file_path, root, limit):
    root = os.path.realpath(root)
    budget = _Budget(file_path, limit)
    with zipfile.ZipFile(file_path) as archive:
        for info in archive.infolist():
            budget.take(_MEMBER_OVERHEAD, info.filename)
            name = info.filename.rstrip("/")
            if name in ("", "."):
                continue
            dest = _member_dest(root, name, file_path)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the writer stored no Unix type
            if info.is_dir():
                os.makedirs(dest, exist_ok=True)
            elif kind and kind not in (stat.S_IFREG, stat.S_IFLNK):
                raise _unsafe(file_path, info.filename, "is a device, FIFO or other special file")
            else:
                # As Python's zipfile: a stored symlink is written as a file holding its target.
                with archive.open(info) as src:
                    _write_stream(src, dest, budget, info.filename)


__all__ = ["get_file", "hash_file", "validate_file", "extract_archive", "DownloadError", "pyminidl_home"]
