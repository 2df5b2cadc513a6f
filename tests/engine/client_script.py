"""A client process for the host-lifetime tests: loads the model, starts a reply, and reports.

    python client_script.py MODEL WORDS N_CTX [--hold-pipe]

prints "host PID" once the model is loaded, "generating" once the reply was asked for and
"token" at the first token; then keeps reading until it is killed. --hold-pipe starts a
`sleep` that inherits the host's command pipe, so the pipe stays open after this process dies
and only the parent's death can tell the host its client is gone.
"""
from __future__ import annotations

import subprocess
import sys


def main() -> None:
    from quantdesk.core.engine import EngineClient, SamplingParams, Token

    model, words, n_ctx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    client = EngineClient()
    client.load(model, n_ctx=n_ctx, n_threads=1)
    if "--hold-pipe" in sys.argv:
        fd = client._commands.fileno()
        holder = subprocess.Popen(["sleep", "120"], pass_fds=(fd,))
        print(f"holder {holder.pid}", flush=True)
    print(f"host {client.host_pid}", flush=True)
    text = " ".join(f"word{i}" for i in range(words)) + "\nWrite a very long story about this."
    print("generating", flush=True)
    first = True
    for event in client.generate([{"role": "user", "content": text}],
                                 SamplingParams(temperature=0.0, max_tokens=100000)):
        if first and isinstance(event, Token):
            print("token", flush=True)
            first = False


if __name__ == "__main__":   # the host is a spawn child: it imports this file as __mp_main__
    main()
