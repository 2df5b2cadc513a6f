"""The local API server: OpenAI- and Anthropic-compatible HTTP over the runtime layer's model
manager and library (Starlette + uvicorn; no HTTP parsing of our own). Qt-free: the CLI
(`quantdesk serve`) and the window both run it. Importing this package loads Starlette."""
from .app import RequestRecord, create_app
from .config import DEFAULT_HOST, DEFAULT_PORT, ConfigError, ServerConfig, is_loopback
from .runner import ServerThread, serve_forever
