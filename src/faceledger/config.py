"""All settings in one place: defaults, overridden by ``FACELEDGER_*`` environment variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from faceledger.errors import ConfigError

__all__ = [
    "Settings",
    "DEFAULT_LIBRARY",
    "ENV_PREFIX",
    "INDEX_BACKENDS",
    "INGEST_ENGINES",
    "MILVUS_INDEX_TYPES",
]

ENV_PREFIX = "FACELEDGER_"
#: Where ingest computes faces (``ingest_engine`` setting; ``ingest --engine``).
INGEST_ENGINES = ("local", "ray")
#: The vector index backends (``index`` setting).
INDEX_BACKENDS = ("faiss", "milvus")
#: Index types the ``milvus_index`` setting accepts (``auto``: FLAT, then IVF_FLAT by size).
MILVUS_INDEX_TYPES = ("auto", "FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "IVF_PQ", "DISKANN")
DEFAULT_LIBRARY = Path("faceledger-library")


@dataclass(frozen=True)
class Settings:
    """Typed settings; each field can be set by ``FACELEDGER_<FIELD NAME IN CAPITALS>``."""

    library: Path = field(default=DEFAULT_LIBRARY, metadata={"help": "library directory"})
    database_url: str = field(
        default="",
        metadata={"help": "SQLAlchemy URL of the catalog; empty = SQLite in the library"},
    )
    detector: str = field(default="hog", metadata={"help": "face detector: hog or cnn"})
    detect_max_side: int = field(
        default=1024, metadata={"help": "detect on a copy whose long side is at most this (px)"}
    )
    upsample: int = field(default=0, metadata={"help": "detector upsampling passes"})
    match_threshold: float = field(
        default=0.6, metadata={"help": "largest Euclidean distance counted as the same person"}
    )
    optout_threshold: float = field(
        default=0.5, metadata={"help": "stricter distance for matching opt-out selfies"}
    )
    max_file_bytes: int = field(
        default=50 * 1024 * 1024, metadata={"help": "largest image file accepted (bytes)"}
    )
    max_pixels: int = field(
        default=100_000_000, metadata={"help": "largest image accepted (width x height)"}
    )
    workers: int = field(
        default=0, metadata={"help": "processes computing face vectors; 0 = one per core"}
    )
    ingest_engine: str = field(
        default="local",
        metadata={"help": "where ingest computes faces: local (a process pool) or ray (Ray "
                  "Data; the 'ray' extra)"},
    )  # fmt: skip
    ray_address: str = field(
        default="",
        metadata={"help": "the Ray cluster ingest_engine=ray joins; empty = RAY_ADDRESS, else "
                  "a local Ray on 127.0.0.1 for the run"},
    )  # fmt: skip
    exact_index_max: int = field(
        default=50_000, metadata={"help": "faces up to which search is exact; above, IVF"}
    )
    compressed_index_min: int = field(
        default=2_000_000,
        metadata={"help": "faces from which the FAISS index is compressed (IVF with 4-bit PQ "
                  "codes and 8-bit SQ codes in memory; the top k re-ranked exactly from the "
                  "catalog's vectors)"},
    )  # fmt: skip
    index: str = field(
        default="faiss", metadata={"help": "vector index backend: faiss or milvus"}
    )
    milvus_uri: str = field(
        default="",
        metadata={"help": "Milvus to use with index=milvus: a path ending in .db is an embedded "
                  "milvus-lite data directory (one process at a time), http://host:19530 a "
                  "server or cluster; empty = index/milvus.db in the library"},
    )  # fmt: skip
    milvus_token: str = field(
        default="",
        metadata={"help": "Milvus credential (user:password or API key) for the searchable "
                  "collection"},
    )  # fmt: skip
    milvus_vault_token: str = field(
        default="",
        metadata={"help": "Milvus credential for the vault collection (grant it to custodian "
                  "services only); empty = milvus_token"},
    )  # fmt: skip
    milvus_prefix: str = field(
        default="faceledger",
        metadata={"help": "prefix of the Milvus collection names: <prefix>_searchable and "
                  "<prefix>_vault"},
    )  # fmt: skip
    milvus_index: str = field(
        default="auto",
        metadata={"help": "Milvus index type: auto (FLAT up to exact_index_max faces, IVF_FLAT "
                  "above), or FLAT, IVF_FLAT, IVF_SQ8, HNSW, IVF_PQ, DISKANN (server only)"},
    )  # fmt: skip
    index_snapshot_backlog: float = field(
        default=0.05,
        metadata={"help": "re-save an index file once the change log since its snapshot "
                  "exceeds this fraction of its faces (and 10,000 changes)"},
    )  # fmt: skip
    index_rebuild_backlog: float = field(
        default=1.0,
        metadata={"help": "rebuild an index from the catalog instead of replaying the change "
                  "log when it is behind by more than this multiple of its faces"},
    )  # fmt: skip
    search_threads: int = field(
        default=1,
        metadata={"help": "FAISS threads per search in the web service (0 = every core)"},
    )
    store_photos: bool = field(
        default=True, metadata={"help": "keep a copy of each photo in the library"}
    )
    key_file: str = field(
        default="", metadata={"help": "file holding the vector encryption key (outside library)"}
    )
    api_key: str = field(
        default="", repr=False,
        metadata={"help": "command line: the API key of the user --as names (all but the owner)"},
    )  # fmt: skip
    service_max_concurrent: int = field(
        default=4,
        metadata={"help": "web service: searches/uploads served at once; more get 503"},
    )
    request_max_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata={"help": "web service: largest request body, all images together (bytes)"},
    )
    request_max_pixels: int = field(
        default=50_000_000,
        metadata={"help": "web service: decoded pixels (width x height) of all probes together"},
    )
    auth_failures_per_minute: int = field(
        default=10,
        metadata={"help": "web service: API key checks that may fail per client address and "
                  "per key prefix each minute; more get 429"},
    )  # fmt: skip
    key_cache_seconds: float = field(
        default=30.0,
        metadata={"help": "web service: how long a verified API key skips argon2 (0 = never)"},
    )
    operator_region: str = field(
        default="",
        metadata={"help": "region code (ISO 3166) of the operator's site, where photos are "
                  "ingested and faces computed, e.g. US-NY: a nexus signal; empty = unknown"},
    )  # fmt: skip

    session_seconds: int = field(
        default=8 * 3600,
        metadata={"help": "web console: how long a sign-in lasts before it must be renewed (s)"},
    )
    optout_min_seconds: float = field(
        default=2.0,
        metadata={"help": "public opt-out page: least time an answer takes, so its timing does "
                  "not tell whether the selfie matched (s)"},
    )  # fmt: skip
    optouts_per_hour: int = field(
        default=20,
        metadata={"help": "public opt-out page: requests accepted per client address each "
                  "hour (ten times that for the whole service); more get 429"},
    )  # fmt: skip

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from defaults, then the environment, then explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if not isinstance(settings.library, Path):
            settings = replace(settings, library=Path(settings.library))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ConfigError on a value that cannot work."""
        if self.detector not in ("hog", "cnn"):
            raise ConfigError(f"detector must be 'hog' or 'cnn', not {self.detector!r}")
        if self.detect_max_side < 64:
            raise ConfigError("detect_max_side must be at least 64 px")
        if not 0 < self.match_threshold < 2:
            raise ConfigError("match_threshold must be between 0 and 2")
        if self.ingest_engine not in INGEST_ENGINES:
            raise ConfigError(
                f"ingest_engine must be one of {', '.join(INGEST_ENGINES)}, "
                f"not {self.ingest_engine!r}"
            )
        if self.index not in INDEX_BACKENDS:
            raise ConfigError(
                f"index must be one of {', '.join(INDEX_BACKENDS)}, not {self.index!r}"
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", self.milvus_prefix):
            raise ConfigError(
                f"milvus_prefix must be letters, digits and underscores, not {self.milvus_prefix!r}"
            )
        if self.milvus_index not in MILVUS_INDEX_TYPES:
            raise ConfigError(
                f"milvus_index must be one of {', '.join(MILVUS_INDEX_TYPES)}, "
                f"not {self.milvus_index!r}"
            )
        if self.compressed_index_min <= 0:
            raise ConfigError("compressed_index_min must be positive")
        if self.index_snapshot_backlog <= 0 or self.index_rebuild_backlog <= 0:
            raise ConfigError("index_snapshot_backlog and index_rebuild_backlog must be positive")
        if self.max_pixels <= 0 or self.max_file_bytes <= 0:
            raise ConfigError("max_pixels and max_file_bytes must be positive")
        service_limits = ("service_max_concurrent", "request_max_bytes", "request_max_pixels",
                          "auth_failures_per_minute", "session_seconds",
                          "optouts_per_hour")  # fmt: skip
        for name in service_limits:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive (set {ENV_PREFIX}{name.upper()})")
        if self.optout_min_seconds < 0:
            raise ConfigError("optout_min_seconds must be 0 or more")
        if self.operator_region and not re.fullmatch(r"[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?",
                                                     self.operator_region):
            raise ConfigError(f"operator_region must be a region code such as US-NY, not "
                              f"{self.operator_region!r}")  # fmt: skip
        if self.key_cache_seconds < 0:
            raise ConfigError("key_cache_seconds must be 0 (no cache) or more")

    @property
    def catalog_url(self) -> str:
        """The database URL: the configured one, or SQLite inside the library directory."""
        return self.database_url or f"sqlite:///{(self.library / 'catalog.sqlite').resolve()}"

    @property
    def milvus_target(self) -> str:
        """The Milvus URI in use: the configured one, or milvus-lite inside the library."""
        return self.milvus_uri or str((self.library / "index" / "milvus.db").resolve())

    @property
    def worker_count(self) -> int:
        """Processes to use for face vectors."""
        return self.workers or (os.cpu_count() or 1)


def _parse(name: str, type_name: object, raw: str) -> object:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
