"""The training corpus: fetch the pinned sources, select files as mining does, hold some out.

Sources are listed in ``sources.json`` (pinned versions and licences): the CPython
standard library of the running interpreter, the Go standard library from
Debian's ``golang-*-src`` package, and a few MIT-licensed npm packages.
Downloads are cached outside git (``~/.cache/forge-tinycoder`` or
``$FORGE_TINYCODER_CACHE``), so a second build runs offline.

Files are chosen exactly as the ``mine`` stage chooses them
(:func:`forge_core.walk.walk_repository` then
:func:`forge_core.walk.classify_content`), plus one rule of this corpus: minified
JavaScript (``*.min.js`` or a line over 1000 characters) is skipped too. A
deterministic ~3% of the files of each language (by a hash of the file's corpus
id) is held out for evaluation and never trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sysconfig
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from forge_core.contracts import LanguageSpec
from forge_core.walk import classify_content, walk_repository

#: The languages of the corpus (the files each one claims).
LANGUAGES: dict[str, LanguageSpec] = {
    "python": LanguageSpec(name="python", extensions=[".py"]),
    "go": LanguageSpec(name="go", extensions=[".go"]),
    "javascript": LanguageSpec(name="javascript", extensions=[".js", ".mjs", ".cjs"]),
}
#: A line longer than this marks a minified or generated JavaScript file.
MINIFIED_LINE_CHARS = 1000


class CorpusError(RuntimeError):
    """A source could not be fetched or does not have the expected licence."""


@dataclass(frozen=True)
class CorpusFile:
    """One file of the corpus: ``id`` is ``<source>/<path inside the source>``."""

    id: str
    source: str
    language: str
    path: Path
    size: int
    heldout: bool

    def read_text(self) -> str:
        """The file's text (the corpus only keeps valid UTF-8)."""
        return self.path.read_text(encoding="utf-8")


@dataclass
class Corpus:
    """Every selected file, and the manifest describing where they came from."""

    files: list[CorpusFile]
    manifest: dict[str, Any] = field(default_factory=dict)

    def select(self, language: str, heldout: bool) -> list[CorpusFile]:
        """The training (or held-out) files of one language, in corpus order."""
        return [f for f in self.files if f.language == language and f.heldout == heldout]

    @property
    def languages(self) -> list[str]:
        """The languages present, in a fixed order."""
        present = {f.language for f in self.files}
        return [name for name in LANGUAGES if name in present]


def cache_dir(override: Path | None = None) -> Path:
    """Where downloads and extracted sources live (never inside the git tree)."""
    if override is not None:
        return override
    env = os.environ.get("FORGE_TINYCODER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "forge-tinycoder"


def load_sources() -> dict[str, Any]:
    """The pinned source list shipped with the package."""
    text = resources.files("forge_tinycoder").joinpath("sources.json").read_text("utf-8")
    sources: dict[str, Any] = json.loads(text)
    return sources


def is_heldout(file_id: str, fraction: float) -> bool:
    """Deterministic hold-out: the file id's hash falls in the first ``fraction``."""
    digest = int(hashlib.sha256(file_id.encode("utf-8")).hexdigest()[:8], 16)
    return digest < fraction * 0x1_0000_0000


# --------------------------------------------------------------------------- fetching


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CorpusError(
            f"`{' '.join(command)}` failed in {cwd}: {result.stderr.strip()[-500:]}; "
            "fetch the sources once on a machine with a package registry, then reuse the cache"
        )


def _fetch_apt(source: dict[str, Any], cache: Path) -> tuple[Path, dict[str, Any]]:
    """Download (once) and extract a Debian source package; return its root folder."""
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    package, version = source["package"], source["version"]
    debs = sorted(downloads.glob(f"{package}_{version}_*.deb"))
    if not debs:
        _run(["apt-get", "download", f"{package}={version}"], downloads)
        debs = sorted(downloads.glob(f"{package}_{version}_*.deb"))
    if not debs:
        raise CorpusError(f"apt-get download {package}={version} left no .deb in {downloads}")
    target = cache / "sources" / f"{package}_{version}"
    if cached_root(source, cache) is None:
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _run(["dpkg", "-x", str(debs[0]), str(partial)], cache)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    origin = {"origin": f"Debian package {package} {version}", "archive": debs[0].name}
    if source.get("licence_file"):
        origin["licence_text"] = str(target / source["licence_file"])
    return target / source["root"], origin


def _fetch_npm(
    source: dict[str, Any], cache: Path, allowed: list[str]
) -> tuple[Path, dict[str, Any]]:
    """Download (once) a pinned npm package with ``npm pack``; check its licence."""
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    name, version = source["spec"].rsplit("@", 1)
    archive = downloads / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    if not archive.is_file():
        _run(["npm", "pack", "--silent", source["spec"]], downloads)
    if not archive.is_file():
        raise CorpusError(f"npm pack {source['spec']} did not write {archive.name}")
    target = cache / "sources" / "npm" / f"{name}-{version}"
    if cached_root(source, cache) is None:
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    root = target / "package"
    licence = json.loads((root / "package.json").read_text("utf-8")).get("license")
    if licence not in allowed:
        raise CorpusError(
            f"npm package {source['spec']} declares licence {licence!r}, not one of {allowed}; "
            "remove it from sources.json"
        )
    return root, {"origin": f"npm {source['spec']}", "archive": archive.name, "licence": licence}


def cached_root(source: dict[str, Any], cache: Path) -> Path | None:
    """The local root folder of a source when it is already there (never fetches)."""
    if source["kind"] == "stdlib":
        return Path(sysconfig.get_paths()["stdlib"])
    if source["kind"] == "apt":
        root = cache / "sources" / f"{source['package']}_{source['version']}" / source["root"]
    else:
        name, version = source["spec"].rsplit("@", 1)
        root = cache / "sources" / "npm" / f"{name}-{version}" / "package"
    return root if root.is_dir() else None


def locate(file_id: str, cache: Path | None = None) -> Path | None:
    """The local path of a corpus file id (``<source>/<path>``), or None when not cached."""
    source_name, _, relative = file_id.partition("/")
    for source in load_sources()["sources"]:
        if source["name"] == source_name:
            root = cached_root(source, cache_dir(cache))
            path = root / relative if root else None
            return path if path and path.is_file() else None
    return None


def fetch_source(
    source: dict[str, Any], cache: Path, allowed: list[str]
) -> tuple[Path, dict[str, Any]]:
    """The local root folder of one source, fetching it on first use."""
    if source["kind"] == "stdlib":
        import platform

        root = Path(sysconfig.get_paths()["stdlib"])
        return root, {"origin": f"CPython {platform.python_version()} standard library"}
    if source["kind"] == "apt":
        return _fetch_apt(source, cache)
    if source["kind"] == "npm":
        return _fetch_npm(source, cache, allowed)
    raise CorpusError(f"sources.json: unknown source kind {source['kind']!r}")


# --------------------------------------------------------------------------- selection


def is_minified(text: str, name: str) -> bool:
    return name.endswith(".min.js") or any(
        len(line) > MINIFIED_LINE_CHARS for line in text.splitlines()
    )


def build_corpus(cache: Path | None = None, languages: list[str] | None = None) -> Corpus:
    """Fetch every source, select its files as mining would, and mark the held-out ones."""
    config = load_sources()
    folder = cache_dir(cache)
    fraction = float(config["heldout_fraction"])
    files: list[CorpusFile] = []
    described = []
    for source in config["sources"]:
        language = source["language"]
        if languages and language not in languages:
            continue
        root, origin = fetch_source(source, folder, config["allowed_licences"])
        walk = walk_repository(root, {language: LANGUAGES[language]})
        skipped: Counter[str] = Counter(walk.skipped)
        kept = 0
        for selected in walk.files:
            data = selected.path.read_bytes()
            reason = classify_content(data)
            if reason is None and language == "javascript":
                text = data.decode("utf-8")
                reason = "minified" if is_minified(text, selected.relative) else None
            if reason:
                skipped[reason] += 1
                continue
            file_id = f"{source['name']}/{selected.relative}"
            files.append(
                CorpusFile(
                    file_id,
                    source["name"],
                    language,
                    selected.path,
                    len(data),
                    is_heldout(file_id, fraction),
                )
            )
            kept += 1
        described.append(
            {
                "name": source["name"],
                "language": language,
                "licence": origin.pop("licence", source.get("licence")),
                "homepage": source.get("homepage"),
                **origin,
                "files": kept,
                "bytes": sum(f.size for f in files if f.source == source["name"]),
                "skipped": dict(sorted(skipped.items())),
            }
        )
    manifest = {
        "heldout_fraction": fraction,
        "sources": described,
        "languages": {
            lang: {
                "train_files": sum(1 for f in files if f.language == lang and not f.heldout),
                "heldout_files": sum(1 for f in files if f.language == lang and f.heldout),
                "train_bytes": sum(f.size for f in files if f.language == lang and not f.heldout),
            }
            for lang in LANGUAGES
            if any(f.language == lang for f in files)
        },
        "heldout": sorted(f.id for f in files if f.heldout),
    }
    return Corpus(files, manifest)


def write_manifest(corpus: Corpus, target: Path) -> Path:
    """Write the corpus manifest (sources, licences, counts, held-out file ids)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(corpus.manifest, indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)
    return target
