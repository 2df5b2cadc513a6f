"""The runtime layer every door calls (window, CLI, local API server, remote workers): plain
Python, no Qt, so that a rule about models lives in one place.

Importing it is light (the window imports it at startup): the planner, the engine host, numpy and
llama.cpp load on first use. Keep every module imported here free of heavy top-level imports.
"""
from .chat import (ChatError, ChatSession, ConversationModel, Reply, load_request,
                   sampling_params)
from .gpu_layers import GpuLayers, describe_gpu_layers, llama_gpu_layers, parse_gpu_layers
from .library import DeletePlan, LibrarySession, Listing, Opened, display_names, plan_deletion
from .models import (LoadRequest, ModelHost, ModelLoaded, ModelLoading, ModelManager,
                     ModelPlanned, ModelUnloaded, ResolvedLoad)
# The quantize session (core.runtime.quantize) needs numpy and the converter: import it as
# `quantdesk.core.runtime.quantize` where it is used, so importing this package stays light.
