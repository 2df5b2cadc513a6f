"""Where the hub is and how we talk to it: endpoint, offline mode, token, cache folder.

huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE once, at import time. We read the
environment at *call* time (falling back to the library's constants) and pass the endpoint and
cache folder explicitly, so a setting changed after start-up (the user's proxy, a test's fake hub)
is honoured without re-importing anything.
"""
from __future__ import annotations

import os
from pathlib import Path

_TRUE = {"1", "ON", "YES", "TRUE"}


def endpoint() -> str:
    """The hub's base URL (HF_ENDPOINT, else huggingface_hub's default)."""
    value = os.environ.get("HF_ENDPOINT")
    if not value:
        from huggingface_hub import constants
        value = constants.ENDPOINT
    return value.rstrip("/")


def is_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set now, or when huggingface_hub was imported."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(name)
        if value is not None:
            return value.upper() in _TRUE
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE)


def cache_dir() -> Path:
    """The huggingface_hub cache (HF_HUB_CACHE / HF_HOME/hub / ~/.cache/huggingface/hub)."""
    value = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if not value and os.environ.get("HF_HOME"):
        value = os.path.join(os.environ["HF_HOME"], "hub")
    if not value:
        from huggingface_hub import constants
        value = constants.HF_HUB_CACHE
    return Path(os.path.expandvars(os.path.expanduser(value)))


def get_token() -> str | None:
    """The token huggingface_hub would send (HF_TOKEN, then the saved token file)."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    path = os.environ.get("HF_TOKEN_PATH")
    if path:  # honoured at call time, like the other settings
        try:
            return Path(path).read_text().strip() or None
        except FileNotFoundError:
            return None
    from huggingface_hub import get_token as hf_get_token
    return hf_get_token()


def save_token(token: str) -> str:
    """Check the token against the hub and store it the way huggingface_hub stores it
    (`huggingface_hub.login`: HF_HOME/token plus stored_tokens). Returns the user name."""
    from quantdesk.core.hub.errors import GatedError, translate
    from huggingface_hub import HfApi, login
    from huggingface_hub import constants
    token = token.strip()
    try:
        user = HfApi(endpoint=endpoint()).whoami(token=token)["name"]
    except Exception as exc:  # noqa: BLE001 - reported as one line
        err = translate(exc, "check the token")
        if isinstance(err, GatedError):
            raise GatedError("the hub rejected this token (invalid or expired)") from None
        raise err from None
    # login() validates again through its own module-level HfApi, built with the endpoint known at
    # import time; point it at ours for this call.
    from huggingface_hub import hf_api
    saved = hf_api.api.endpoint
    hf_api.api.endpoint = endpoint()
    path_override = os.environ.get("HF_TOKEN_PATH")
    saved_paths = (constants.HF_TOKEN_PATH, constants.HF_STORED_TOKENS_PATH)
    if path_override:
        constants.HF_TOKEN_PATH = path_override
        constants.HF_STORED_TOKENS_PATH = os.path.join(os.path.dirname(path_override), "stored_tokens")
    try:
        login(token=token, add_to_git_credential=False)
    finally:
        hf_api.api.endpoint = saved
        constants.HF_TOKEN_PATH, constants.HF_STORED_TOKENS_PATH = saved_paths
    return user


def api():
    """A huggingface_hub HfApi bound to the current endpoint and token."""
    from huggingface_hub import HfApi
    return HfApi(endpoint=endpoint(), token=get_token() or False)


def auth_headers() -> dict[str, str]:
    """Headers huggingface_hub sends (user agent, token) for our own ranged requests."""
    from huggingface_hub.utils import build_hf_headers
    return build_hf_headers(token=get_token() or False, library_name="quantdesk")


def http_library():
    """The httpx module huggingface_hub uses (httpx2 in 2.x, httpx before)."""
    try:
        import httpx2
        return httpx2
    except ImportError:  # older huggingface_hub
        import httpx
        return httpx


def session():
    """huggingface_hub's shared HTTP client (follows redirects, honours offline mode)."""
    from huggingface_hub.utils import get_session
    return get_session()


def check_online(what: str) -> None:
    """Raise OfflineError before any request when offline mode is on."""
    if is_offline():
        from quantdesk.core.hub.errors import OfflineError
        raise OfflineError(f"offline: cannot {what} because HF_HUB_OFFLINE is set (the Library still works)")
