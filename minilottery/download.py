"""Verified, atomic downloads; the only module that touches the network.

Where files come from
    Without a mirror, the canonical URLs of each file, tried in order. A mirror,
    when set, *replaces* them (no silent fallback to the internet): the
    ``mirror=`` argument, else the environment variable ``MINILOTTERY_MIRROR``.
    A mirror is a BASE folder or URL -- a local path, ``file://``, ``http://``
    or ``https://`` -- holding one sub-folder per dataset::

        {mirror}/mnist/train-images-idx3-ubyte.gz   (and the other three)
        {mirror}/cifar10/cifar-10-binary.tar.gz

Where files go
    ``{data_dir}/{dataset}/``, where ``data_dir`` is the ``data_dir=`` argument,
    else the environment variable ``MINILOTTERY_DATA``, else :func:`default_root`:
    the checkout's ``datasets/`` when minilottery runs from a source checkout,
    otherwise a per-user cache folder (``$XDG_CACHE_HOME/minilottery``,
    ``~/.cache/minilottery``; ``%LOCALAPPDATA%\\minilottery`` on Windows). Never
    the current directory: a script run from anywhere finds the same files.

How
    Every source, a local mirror folder included, is read through
    ``urllib.request.urlopen`` into a temporary file in the destination folder
    (``.{name}.XXXX.part``). The temporary file is verified, and only then
    renamed to its final name with ``os.replace``. A failed or interrupted
    download deletes its temporary file; a process killed outright may leave a
    ``.part`` file, which is never read. A file already present is verified
    again every time it is used.
"""
import gzip
import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from urllib.request import urlopen
from minilottery.errors import DatasetError  # (re-exported: data.DatasetError)

ENV_MIRROR = "MINILOTTERY_MIRROR"
ENV_DATA = "MINILOTTERY_DATA"
TIMEOUT = 60       # seconds a connection may stall before the source is given up
CHUNK = 1 << 20    # bytes per read while copying and hashing



def default_root():
    """The data folder when none is set: the checkout's ``datasets/``, else a per-user cache folder."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "datasets" / "README.md").is_file():
        return checkout / "datasets"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "minilottery"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minilottery"


def data_root(data_dir=None):
    """The data folder: ``data_dir``, else ``$MINILOTTERY_DATA``, else :func:`default_root`."""
    root = data_dir if data_dir is not None else (os.environ.get(ENV_DATA) or default_root())
    return Path(root).expanduser()


def data_folder(dataset, data_dir=None):
    """``{data_root(data_dir)}/{dataset}`` (created if needed)."""
    folder = data_root(data_dir) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def mirror_url(mirror):
    """A mirror setting as a base URL: a plain folder path becomes a ``file://`` URL."""
    mirror = str(mirror)
    if "://" in mirror:
        return mirror.rstrip("/")
    return Path(mirror).expanduser().resolve().as_uri()


def sources(dataset, filename, canonical, mirror=None):
    """The URLs to try for one file: the mirror's only, when one is set; else ``canonical``."""
    if mirror is None:
        mirror = os.environ.get(ENV_MIRROR) or None
    if mirror:
        return [f"{mirror_url(mirror)}/{dataset}/{filename}"]
    return [base.rstrip("/") + "/" + filename for base in canonical]


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def gunzip(path):
    """The decompressed content of a gzip file; a bad or truncated one raises DatasetError."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"not a valid gzip file ({type(e).__name__}: {e})") from None


def ensure(folder, filename, urls, check):
    """Make sure ``folder/filename`` exists and passes ``check``; return what ``check`` returns.

    ``check(path)`` verifies a file and raises :class:`DatasetError` with the
    details (e.g. expected and actual checksum) if it is bad. A file already
    present is checked in place; a missing one is downloaded from ``urls`` (the
    first that yields a good file wins) through a verified temporary file.
    """
    dest = Path(folder) / filename
    if dest.exists():
        try:
            return check(dest)
        except DatasetError as e:
            raise DatasetError(
                f"{dest}: {e}. The file is corrupt, truncated or not the expected one: "
                f"delete it and run again to download it afresh.") from None
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out, urlopen(url, timeout=TIMEOUT) as src:
                shutil.copyfileobj(src, out, CHUNK)
            result = check(Path(tmp))
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a dataset is not
            os.replace(tmp, dest)
            return result
        except Exception as e:  # any failure of this source: note it, try the next one
            errors.append(f"{url} ({_short(e)})")
        finally:  # also on KeyboardInterrupt: never leave a partial file behind
            if os.path.exists(tmp):
                os.remove(tmp)
    name = f"{Path(folder).name}/{filename}"
    raise DatasetError(
        f"could not get {name}: set {ENV_MIRROR} (or --mirror) to a folder or URL holding it, "
        f"or put the file in {folder}; tried {'; '.join(errors)}")


def _short(e):
    """A source's failure in a few words: an OS error's reason without the path it repeats."""
    e = getattr(e, "reason", None) or e                # urllib wraps the OS error
    if isinstance(e, DatasetError):
        return " ".join(str(e).split())                # a checksum mismatch says expected and found
    return getattr(e, "strerror", None) or " ".join(str(e).split()) or type(e).__name__


def read_tar_members(archive, wanted):
    """The bytes of the members named in ``wanted``, read from a ``.tar.gz`` into memory.

    Members are checked as they stream by, and one bad member refuses the
    whole archive: a path that would resolve outside the archive's folder if
    extracted (absolute, or with ``..``), a symbolic or hard link, or anything
    that is neither a regular file nor a folder. Only the wanted regular files
    are read; nothing is written to disk.
    """
    archive = Path(archive)
    root = archive.parent.resolve()
    found = {}
    try:
        with tarfile.open(archive, "r|gz") as tar:  # one streaming pass
            for m in tar:
                target = (root / m.name).resolve()
                if target != root and root not in target.parents:
                    raise DatasetError(f"member {m.name!r} would land outside {root}")
                if m.issym() or m.islnk():
                    raise DatasetError(f"member {m.name!r} is a link (to {m.linkname!r})")
                if not (m.isfile() or m.isdir()):
                    raise DatasetError(f"member {m.name!r} is not a regular file")
                name = posixpath.normpath(m.name)
                if name in wanted and m.isfile():
                    found[name] = tar.extractfile(m).read()
    except DatasetError as e:
        raise DatasetError(f"{archive}: {e}; refusing this archive. Delete it and "
                           "download the official one (check the mirror).") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{archive}: unreadable archive ({type(e).__name__}: {e}); "
                           "delete it and run again.") from None
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise DatasetError(f"{archive}: lacks {', '.join(missing)}; delete it and "
                           "download the official archive (check the mirror).")
    return found
