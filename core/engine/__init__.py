"""Inference engine: llama-cpp-python in a child process (host.py), driven by EngineClient.

Importing this package is cheap: llama_cpp is imported only inside the host process.
"""
from .client import EngineClient
from .types import Done, EngineError, LoadResult, ModelFileError, SamplingParams, Token

__all__ = ["EngineClient", "EngineError", "ModelFileError", "SamplingParams", "LoadResult", "Token", "Done"]
