"""The engine host's generate and embed commands: a prompt in, tokens (or vectors) out.

A mixin of host.Host (the command loop, protocol in host.py's docstring), which provides
self.llm, self.template, self.projector, self.events, self.current_id and self.stopping().
generate streams ("token", ...) events then one ("done", ...): the chat template (prompt.py),
images through the projector (vision.py), JSON-schema grammars, logprobs (logprobs.py),
prompt-lookup drafts, and cancel between tokens and mid-prompt (llama.cpp's abort callback).
"""
from __future__ import annotations

import json
import random
import re
import time

from .logprobs import TokenRecorder
from .prompt import Prompt, TemplateError, chat_template_prompt, completion_prompt
from .types import ContextOverflowError, InvalidRequestError

NEVER = 1 << 62          # a generation id no cancel reaches


class HostGenerate:
    """Answering with the loaded model (host.Host's "generate" and "embed" commands)."""

    def _forget_cut_batch(self) -> None:
        """After the abort callback cut a batch short: empty the KV cache and llama-cpp-python's
        token record, so the next reply is evaluated from scratch. The cut batch can leave cells
        behind (seen with flash attention on the CPU: the next greedy reply differed from a fresh
        load's); re-reading a prompt once after a Stop is cheap, a wrong reply is not."""
        import llama_cpp
        self.llm.reset()
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.llm.ctx), True)

    def build_prompt(self, messages: list[dict], tools: list[dict] | None = None,
                     variables: dict | None = None):
        llm = self.llm
        if self.template is None:
            return completion_prompt(messages)
        model = llm._model
        eos, bos = llm.token_eos(), llm.token_bos()
        return chat_template_prompt(
            self.template, messages,
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            eos_token=model.token_get_text(eos) if eos != -1 else "", tools=tools,
            variables=variables)

    def embed(self, texts: list[str]) -> dict:
        """One pooled, normalised vector per text; a text longer than the context is refused
        (llama-cpp-python would cut it silently)."""
        llm = self.llm
        if llm is None:
            raise RuntimeError("no model is loaded")
        if not llm.context_params.embeddings:
            raise InvalidRequestError("this model was loaded for chat, not for embeddings")
        counts = [len(llm.tokenize(t.encode("utf-8"))) for t in texts]
        for i, n in enumerate(counts):
            if n > llm.n_batch:
                raise ContextOverflowError(f"input {i} ({n} tokens) does not fit the context "
                                           f"size ({llm.n_batch})")
        vectors = llm.embed(texts, normalize=True, truncate=False)
        return {"embeddings": vectors, "prompt_tokens": sum(counts)}

    @staticmethod
    def grammar(json_schema: str | None, prefix: str = "", suffix: str = "", gbnf: str = ""):
        """llama.cpp's grammar for a JSON schema: every reply parses and follows it, written
        between `prefix` and `suffix` (a tool call's own markers, "<tool_call>\n" ...); or a
        whole grammar (`gbnf`: a tool format that is not JSON)."""
        if gbnf:
            from llama_cpp import LlamaGrammar
            try:
                return LlamaGrammar.from_string(gbnf, verbose=False)
            except Exception as exc:  # noqa: BLE001 - llama-cpp-python's parser raises ValueError
                msg = " ".join(str(exc).split()) or type(exc).__name__
                raise InvalidRequestError(f"the forced tool call cannot be followed ({msg})") from None
        if not json_schema:
            return None
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import json_schema_to_gbnf
        try:
            if not prefix and not suffix:
                return LlamaGrammar.from_json_schema(json_schema, verbose=False)
            rules = re.sub(r"^root ::=", "json-root ::=", json_schema_to_gbnf(json_schema),
                           flags=re.M)
            root = f"root ::= {json.dumps(prefix)} json-root {json.dumps(suffix)}\n"
            return LlamaGrammar.from_string(root + rules, verbose=False)
        except Exception as exc:  # noqa: BLE001 - the converter raises many kinds
            msg = " ".join(str(exc).split()) or type(exc).__name__
            raise InvalidRequestError(f"the JSON schema cannot be followed ({msg})") from None

    def generate(self, gen_id: int, messages: list[dict], sampling: dict,
                 raw_prompt: str | None = None, tools: list[dict] | None = None) -> None:
        self.current_id = gen_id
        try:
            self._generate(gen_id, messages, sampling, raw_prompt, tools)
        finally:
            self.current_id = NEVER

    def _generate(self, gen_id: int, messages: list[dict], sampling: dict,
                  raw_prompt: str | None = None, tools: list[dict] | None = None) -> None:
        llm = self.llm
        if llm is None:
            raise RuntimeError("no model is loaded")
        images = [data for m in messages for data in m.get("images") or ()]
        if images and self.projector is None:
            raise InvalidRequestError(
                "this model was loaded without a vision projector (mmproj), so it cannot read "
                "images; put its mmproj*.gguf beside the model file (or name it with --mmproj), "
                "or leave the image out")
        messages = [{k: v for k, v in m.items() if k != "images"} for m in messages]
        # A raw prompt (the server's /v1/completions) is continued as it is, no chat template.
        prompt = (self.build_prompt(messages, tools, sampling.get("template_vars"))
                  if raw_prompt is None else
                  Prompt(raw_prompt, add_bos=True, used_chat_template=False))
        n_ctx = llm.n_ctx()
        start = time.perf_counter()
        count = 0
        first_at = start
        cancelled = False
        image_tokens = extra_cells = 0
        if images:   # evaluated here, with the images; create_completion only samples
            try:
                n_prompt, image_tokens, cells = self.projector.evaluate(
                    llm, prompt.text, images, self.stopping, add_bos=prompt.add_bos)
                extra_cells = cells - n_prompt   # M-RoPE images: more cells than positions
            except RuntimeError:
                if not self.stopping():
                    raise
                self._forget_cut_batch()
                self.events.send(("done", dict(
                    prompt_tokens=0, completion_tokens=0, tokens_per_second=0.0,
                    finish_reason="cancelled", used_chat_template=prompt.used_chat_template,
                    n_ctx=n_ctx)))
                return
            tokens = llm.input_ids[:n_prompt].tolist()
        else:
            tokens = llm.tokenize(prompt.text.encode("utf-8"), add_bos=prompt.add_bos,
                                  special=True)
        if not tokens:   # llama-cpp-python asserts on an empty prompt
            raise TemplateError("the model's chat template made a prompt without tokens for "
                                "this conversation (the template in the model file is faulty)")
        if len(tokens) >= n_ctx:
            raise ContextOverflowError(f"the conversation ({len(tokens)} tokens) does not fit the context "
                               f"size ({n_ctx}); start a new chat or load with a larger context")
        n_prompt = len(tokens)

        def between_tokens(input_ids, logits) -> bool:
            # Called by llama-cpp-python after every sampled token: count it, honour cancel.
            # It calls it once more after the loop, with no new token: the count is of the
            # tokens Llama.sample gave (the recorder's), not read from input_ids, whose length
            # with prompt-lookup drafts can be anything from prompt + count - 1 on.
            nonlocal count, first_at, cancelled
            if count == 0:
                first_at = time.perf_counter()
            if len(recorder.chosen) > count:
                count += 1
            if self.stopping():
                cancelled = True
            return cancelled

        from llama_cpp import StoppingCriteriaList
        # llama-cpp-python's own "no seed" draws from a fixed generator (every reply the same);
        # -1 means a fresh reply each time, so draw one here.
        seed = int(sampling.get("seed", -1))
        if seed < 0:
            seed = random.randrange(2**31)
        finish = "length"
        grammar = self.grammar(sampling.get("json_schema"), sampling.get("json_prefix") or "",
                               sampling.get("json_suffix") or "", sampling.get("gbnf") or "")
        stops = list(sampling.get("stop") or ())
        recorder = TokenRecorder(llm, sampling.get("logprobs"))
        from .vision import kv_room
        try:
            with recorder.sampling(), kv_room(llm, extra_cells):
                stream = llm.create_completion(
                    list(tokens), max_tokens=int(sampling["max_tokens"]),
                    temperature=float(sampling["temperature"]),
                    top_p=float(sampling["top_p"]), top_k=int(sampling["top_k"]),
                    min_p=float(sampling["min_p"]),
                    repeat_penalty=float(sampling["repeat_penalty"]),
                    seed=seed, stop=prompt.stop + stops, stream=True,
                    stopping_criteria=StoppingCriteriaList([between_tokens]), grammar=grammar)
                for chunk in stream:
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        entries = recorder.take()
                        self.events.send(("token", choice["text"] if entries is None else
                                          {"text": choice["text"], "logprobs": entries}))
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
        except RuntimeError:
            # The abort callback stopped llama_decode ("llama_decode returned 2"); the cut batch
            # is forgotten below, so the next reply starts from a consistent state.
            if not self.stopping():
                raise
            cancelled = True
            self._forget_cut_batch()
            if count == 0:
                first_at = time.perf_counter()
        end = time.perf_counter()
        if cancelled:
            finish = "cancelled"
        gen_seconds = end - first_at
        rate = (count - 1) / gen_seconds if count > 1 and gen_seconds > 0 else (
            count / (end - start) if end > start else 0.0)
        self.events.send(("done", dict(
            prompt_tokens=n_prompt + extra_cells, completion_tokens=count,
            tokens_per_second=rate,
            finish_reason=finish, used_chat_template=prompt.used_chat_template, n_ctx=n_ctx,
            image_tokens=image_tokens,
            prompt_seconds=first_at - start, generation_seconds=gen_seconds,
            stop_sequence=recorder.stop_sequence(stops) if finish == "stop" else None)))
