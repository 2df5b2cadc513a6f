"""Several machines, one model: llama.cpp's RPC backend (ggml-rpc), driven from Python.

A *worker* (`quantdesk worker`, worker.py) runs llama.cpp's own RPC server on a machine through
the ggml RPC library (ctypes); the engine host of the machine that runs the model registers the
chosen workers as ggml backend devices before a load (devices.py), so llama.cpp places layers on
them like on a local GPU. Nothing here re-implements inference: layers, graphs and tensors travel
through llama.cpp's protocol.

    endpoints.py  "HOST:PORT,..." parsing, loopback test
    wire.py       a read-only probe of a worker (version, devices, free memory) with timeouts:
                  ggml's own client calls abort the process on a dead worker and have no timeout
    ggml_lib.py   the ctypes bindings (ggml-backend registry, ggml-rpc)
    worker.py     serve: the RPC server, its advertised memory (--mem), clean stop
    devices.py    in the engine host: register workers as devices
    placement.py  in the engine host: where llama.cpp really put each layer (its load log)

The protocol has no authentication and no encryption: a worker must only listen where every
machine that can reach it is trusted (see README, "Several machines").
"""
