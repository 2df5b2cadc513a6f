"""ChatSession: one conversation's rules over the chat store and the model manager.

Any door (the window, the CLI, a future server) drives a conversation through this, so the rules
live once:
  * a conversation's model, system prompt and settings are read from the store when a reply
    starts (a door saves what the person chose, then sends);
  * a conversation uses the model stored with it (ConversationModel), never whatever is loaded
    or shown elsewhere: a new conversation is given its model, switching it is a deliberate
    call (switch_model), and a conversation whose model file is gone says so and refuses to
    reply until another model is chosen;
  * the first user message titles a "New chat"; editing the last message deletes it and what
    follows before the new one is added; regenerate replaces the last reply;
  * a user message's images are stored with it (chat store, schema 3) and sent again with every
    later reply, a reopened conversation's too: the model sees what it saw before. A model
    loaded without a vision projector gets an earlier message's images as "[image: name]" lines
    (the conversation goes on after a switch to a text model); the latest message's images are
    always sent, so a new image is refused in one line, never dropped;
  * a reply in flight is saved every SAVE_EVERY_S seconds marked incomplete (a crash loses at most
    that), then finalised with its stats; a cancelled reply that said nothing leaves no row; a
    failed one keeps what arrived (incomplete, with the error) or leaves no row.

A reply streams as a core job, `Reply.run(report, cancel) -> Done` (app/bridge.py runs it off the
GUI thread), or as a generator, `Reply.events(cancel)`. Its events are the model manager's
(ModelLoading, ModelPlanned, ModelLoaded) and the engine's Token pieces.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from quantdesk.core.engine.types import Done, SamplingParams, Token

from quantdesk.core.engine.kv_cache import (DEFAULT_FLASH_ATTN, DEFAULT_KV_TYPE,
                                            DEFAULT_PROMPT_LOOKUP)

from .gpu_layers import AUTO
from .models import AUTO_MMPROJ, DEFAULT_CTX, LoadRequest, ModelManager

SAVE_EVERY_S = 0.5
NEW_TITLE = "New chat"
TITLE_CHARS = 48
SAMPLING_DEFAULTS = SamplingParams().to_dict()
LOAD_DEFAULTS = {"n_ctx": DEFAULT_CTX, "n_gpu_layers": AUTO, "kv_type_k": DEFAULT_KV_TYPE,
                 "kv_type_v": DEFAULT_KV_TYPE, "flash_attn": DEFAULT_FLASH_ATTN,
                 "prompt_lookup": DEFAULT_PROMPT_LOOKUP}


class ChatError(Exception):
    """A reply cannot start (no model chosen, nothing to answer). One line for the user."""


def chosen_load_defaults() -> dict:
    """The load settings the user chose for new chats on the Settings page (threads, context,
    GPU layers; core.settings); only the keys they set."""
    from quantdesk.core.settings import load_settings
    return load_settings().chat_defaults()


def default_load_settings() -> dict:
    """What a chat loads with where it sets nothing itself: the user's choices over the
    built-in LOAD_DEFAULTS."""
    return {**LOAD_DEFAULTS, **chosen_load_defaults()}


def model_load_settings(model_path) -> dict:
    """The load settings the library keeps for this model (core.runtime.model_settings: the
    Library's "Load settings…", `quantdesk model-settings`); only the keys it sets. A chat that
    gets this model starts from them, over the user's defaults, as the API server loads it."""
    if not model_path:
        return {}
    from .model_settings import ModelSettings
    return ModelSettings().get(model_path)


@dataclass(frozen=True)
class ConversationModel:
    """The model a conversation uses: the file stored with it."""
    path: str | None

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else ""

    @property
    def missing(self) -> bool:
        """The file is gone (deleted, moved, on an unplugged disk): no reply until switched."""
        return bool(self.path) and not os.path.isfile(self.path)

    def describe(self) -> str:
        if not self.path:
            return "no model chosen"
        return f"{self.name} (file missing)" if self.missing else self.name

    def missing_message(self) -> str:
        return f"the model file of this chat is gone ({self.path}): pick another model"


def load_request(model_path, settings: dict | None) -> LoadRequest:
    """The load a conversation's settings ask for (its context, GPU layers, threads, KV-cache
    types, flash attention, prompt lookup); a key the conversation does not set comes from the
    user's defaults. A setting llama.cpp would refuse raises ChatError."""
    merged = {**default_load_settings(),
              **{k: v for k, v in (settings or {}).items() if v is not None}}
    try:
        return LoadRequest(str(model_path), n_ctx=int(merged["n_ctx"]),
                           gpu_layers=merged["n_gpu_layers"], n_threads=merged.get("n_threads"),
                           kv_type_k=merged["kv_type_k"], kv_type_v=merged["kv_type_v"],
                           flash_attn=merged["flash_attn"],
                           prompt_lookup=merged["prompt_lookup"],
                           rpc_servers=_workers(merged.get("rpc_servers")),
                           mmproj=merged.get("mmproj", AUTO_MMPROJ))
    except ValueError as exc:
        raise ChatError(str(exc)) from None


def _workers(chosen) -> tuple:
    """A conversation's own list (the CLI's --rpc, even empty), else the machines enabled on the
    Settings page, read at each load (a machine added or removed there counts at once)."""
    if chosen is not None:
        return tuple(chosen)
    from quantdesk.core.settings import load_settings
    return load_settings().enabled_machines()


def sampling_params(settings: dict | None) -> SamplingParams:
    merged = {**SAMPLING_DEFAULTS, **(settings or {})}
    return SamplingParams(**{k: merged[k] for k in SAMPLING_DEFAULTS})


class Reply:
    """One assistant reply: its (already stored, empty, incomplete) message and its stream."""

    def __init__(self, store, models: ModelManager, cid: int, mid: int, request: LoadRequest,
                 params: SamplingParams, messages: list[dict], clock=time.monotonic):
        self.store, self.models = store, models
        self.cid, self.mid = cid, mid
        self.request, self.params, self.messages = request, params, messages
        self._clock = clock
        self.text = ""
        self.pieces = 0
        self.started = clock()
        self.first_token: float | None = None
        self.saved_at = self.started
        self.host = None            # the ModelHost that answered (its .resolved is the plan used)
        self.done: Done | None = None

    def run(self, report: Callable[[object], None], cancel) -> Done:
        """The core job: load if needed, stream, save. Events reach `report` as they happen
        (the load's too). Returns the reply's Done; raises EngineError (the row is settled)."""
        try:
            self.host = self.models.load(self.request, report=report)
            for event in self._stream(cancel):
                report(event)
        except BaseException as exc:
            self._fail(exc)
            raise
        return self.done

    def events(self, cancel=None) -> Iterator[object]:
        """The same as a generator: the load's events (after the load), then Token pieces;
        self.done is set when it ends."""
        try:
            loading: list = []
            self.host = self.models.load(self.request, report=loading.append)
            yield from loading
            yield from self._stream(cancel)
        except BaseException as exc:
            self._fail(exc)
            raise

    def _stream(self, cancel) -> Iterator[Token]:
        for event in self.host.generate(self.messages, self.params, cancel):
            if isinstance(event, Token):
                self._add(event.text)
                yield event
            else:
                self._finish(event)

    def _add(self, piece: str) -> None:
        self.text += piece
        self.pieces += 1
        now = self._clock()
        if self.first_token is None:
            self.first_token = now
        if now - self.saved_at >= SAVE_EVERY_S:
            self.store.update_message(self.mid, self.text, complete=False)
            self.saved_at = now

    def stats(self, done: Done) -> dict:
        return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
                "tokens_per_second": done.tokens_per_second,
                "finish_reason": done.finish_reason, "n_ctx": done.n_ctx,
                "used_chat_template": done.used_chat_template,
                "model": Path(self.request.path).name,
                **({"image_tokens": done.image_tokens} if done.image_tokens else {})}

    def _finish(self, done: Done) -> None:
        self.done = done
        if done.finish_reason == "cancelled" and not self.text:
            self.store.delete_messages_from(self.cid, self.mid)  # nothing was said: no husk
        else:
            self.store.update_message(self.mid, self.text, complete=True, stats=self.stats(done))

    def _fail(self, exc: BaseException) -> None:
        if self.done is not None:
            return
        if self.text:
            # An error keeps its one line; an interruption (Ctrl-C, a closed generator) does not.
            stats = ({"error": " ".join(str(exc).split()) or type(exc).__name__}
                     if isinstance(exc, Exception) else None)
            self.store.update_message(self.mid, self.text, complete=False, stats=stats)
        else:
            self.store.delete_messages_from(self.cid, self.mid)

    def save_partial(self) -> None:
        """App exit mid-reply: keep what has arrived, marked incomplete."""
        if self.done is None:
            self.store.update_message(self.mid, self.text, complete=False)


class ChatSession:
    """A conversation in the store, answered through the model manager."""

    def __init__(self, store, models: ModelManager, conversation_id: int | None = None, *,
                 clock: Callable[[], float] = time.monotonic):
        self.store, self.models = store, models
        self.conversation_id = conversation_id
        self._clock = clock   # the save cadence's time (tests step it)

    def new_conversation(self, *, system_prompt: str = "", model_path=None,
                         settings: dict | None = None) -> int:
        # What the door does not choose comes from the model's stored load settings, then the
        # user's defaults, fixed at creation.
        settings = {**default_load_settings(), **model_load_settings(model_path),
                    **(settings or {})}
        conv = self.store.create_conversation(system_prompt=system_prompt,
                                              model_path=model_path, settings=settings)
        self.conversation_id = conv.id
        return conv.id

    def conversation(self):
        return self.store.get_conversation(self._cid())

    def model(self) -> ConversationModel:
        """The model of the open conversation (path None: none open, or none chosen yet)."""
        if self.conversation_id is None:
            return ConversationModel(None)
        return ConversationModel(self.conversation().model_path)

    def switch_model(self, model_path) -> ConversationModel:
        """Make `model_path` the open conversation's model from its next reply on (the replies
        so far keep the model name in their stats). The load settings the library keeps for
        that model replace the conversation's own for the keys it sets."""
        path = None if model_path is None else str(model_path)
        stored = model_load_settings(path)
        changes = {"settings": {**(self.conversation().settings or {}), **stored}} if stored else {}
        self.store.update_conversation(self._cid(), model_path=path, **changes)
        return ConversationModel(path)

    def has_replies(self) -> bool:
        return any(m.role == "assistant" for m in self.messages())

    def messages(self) -> list:
        return self.store.messages(self.conversation_id) if self.conversation_id is not None else []

    def last_user_message(self):
        return next((m for m in reversed(self.messages()) if m.role == "user"), None)

    def _cid(self) -> int:
        if self.conversation_id is None:
            raise ChatError("no conversation is open")
        return self.conversation_id

    def engine_messages(self, sees_images: bool = True) -> list[dict]:
        """What the model sees: the system prompt, then every message that says something.
        sees_images False (no projector): earlier messages' images become "[image: name]"."""
        conv = self.conversation()
        out = [{"role": "system", "content": conv.system_prompt.strip()}] \
            if conv.system_prompt.strip() else []
        shown = [m for m in self.store.messages(conv.id) if m.content and m.role != "system"]
        latest = next((m.id for m in reversed(shown) if m.role == "user"), None)
        out += [{"role": m.role, "content": self._content(m, sees_images or m.id == latest)}
                for m in shown]
        return out

    def _content(self, message, images: bool = True):
        if not message.images:
            return message.content
        if not images:
            return "\n".join([message.content] + [f"[image: {r.name}]" for r in message.images])
        return [{"type": "text", "text": message.content}] + [
            {"type": "image", "data": self.store.image_data(ref.sha256)}
            for ref in message.images]

    def message_images(self, message) -> list[dict]:
        """A stored message's images as content parts send() takes again (with their names):
        "Edit last" hands them back so the edited message keeps them."""
        return [{"type": "image", "data": self.store.image_data(ref.sha256), "name": ref.name}
                for ref in message.images]

    def send(self, text: str, *, replace_from: int | None = None, images=()) -> Reply:
        """Store the user's message (after deleting `replace_from` and what follows: edit-last)
        and the reply's empty row; run the returned Reply to answer. images: paths or content
        parts (core.engine.images: a path, data or a data: URL; "name" optional) the model sees
        after the text, stored with the message; read and checked against the store's caps now,
        so a missing or oversized file is a ChatError (or ChatStoreError) before anything is
        stored or deleted."""
        text = text.strip()
        if not text:
            raise ChatError("the message is empty")
        parts = self._read_images(images)
        if self.conversation_id is None:
            self.new_conversation()
        cid = self._cid()
        self._check_model()
        self._load_request()   # settings llama.cpp would refuse: say so before storing anything
        self.store.check_images(parts)
        if replace_from is not None:
            self.store.delete_messages_from(cid, replace_from)
        conv = self.conversation()
        if conv.title == NEW_TITLE and not any(m.role == "user" for m in self.messages()):
            self.store.update_conversation(cid, title=text.splitlines()[0][:TITLE_CHARS])
        self.store.add_message(cid, "user", text, images=parts)
        return self._reply()

    @staticmethod
    def _read_images(images) -> list[tuple[str, bytes]]:
        """(name, bytes) per image: a path's file name, a part's "name", else "image N"."""
        from quantdesk.core.engine.images import image_bytes
        from quantdesk.core.engine.types import EngineError
        out = []
        for i, image in enumerate(images or (), 1):
            if isinstance(image, (bytes, bytearray)):
                part = {"type": "image", "data": bytes(image)}
            elif isinstance(image, (str, Path)):
                part = {"type": "image", "path": str(image)}
            else:
                part = image
            name = part.get("name") or (Path(part["path"]).name if part.get("path")
                                        else f"image {i}")
            try:
                out.append((str(name), image_bytes(part, f"image {i}")))
            except EngineError as exc:
                raise ChatError(str(exc)) from None
        return out

    def regenerate(self) -> Reply | None:
        """Replace the last reply with a new one; None when there is nothing to answer."""
        self._check_model()    # before the old reply goes: a refused regenerate loses nothing
        self._load_request()   # refused settings keep the old reply too
        messages = self.messages()
        if messages and messages[-1].role == "assistant":
            self.store.delete_messages_from(self._cid(), messages[-1].id)
        if not any(m.role == "user" for m in self.messages()):
            return None
        return self._reply()

    def _check_model(self) -> None:
        model = self.model()
        if model.path is None:
            raise ChatError("pick a model first")
        if model.missing:
            raise ChatError(model.missing_message())

    def _reply(self) -> Reply:
        self._check_model()
        conv = self.conversation()
        request = self._load_request()
        messages = self.engine_messages(sees_images=request.mmproj is not None)
        row = self.store.add_message(conv.id, "assistant", "", complete=False)
        return Reply(self.store, self.models, conv.id, row.id, request,
                     sampling_params(conv.settings), messages, clock=self._clock)

    def _load_request(self) -> LoadRequest:
        conv = self.conversation()
        return load_request(conv.model_path, conv.settings)
