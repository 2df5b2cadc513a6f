"""The runtime layer every door calls (window, CLI, local API server): plain Python, no Qt.

Importing it is light: the planner, the engine host and llama.cpp load on first use.
"""
from .chat import ChatError, ChatSession, Reply, load_request, sampling_params
from .gpu_layers import GpuLayers, describe_gpu_layers, llama_gpu_layers, parse_gpu_layers
from .models import (LoadRequest, ModelHost, ModelLoaded, ModelLoading, ModelManager,
                     ModelPlanned, ModelUnloaded, ResolvedLoad)
