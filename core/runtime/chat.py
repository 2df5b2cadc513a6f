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

The parts: chat_requests.py (a conversation's LoadRequest and SamplingParams, ChatError),
chat_reply.py (Reply: streaming and saving one reply); this module is the conversation.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Re-exported: the doors and tests name these from core.runtime.chat.
from .chat_reply import SAVE_EVERY_S, Reply  # noqa: F401
from .chat_requests import (LOAD_DEFAULTS, SAMPLING_DEFAULTS, ChatError,  # noqa: F401
                            chosen_load_defaults, default_load_settings, load_request,
                            model_load_settings, sampling_params)
from .models import LoadRequest, ModelManager

NEW_TITLE = "New chat"
TITLE_CHARS = 48


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

    def engine_messages(self, sees_images: bool = True, cid: int | None = None) -> list[dict]:
        """What the model sees: the system prompt, then every message that says something.
        sees_images False (no projector): earlier messages' images become "[image: name]".
        cid: that conversation (default: the open one)."""
        conv = self.store.get_conversation(cid) if cid is not None else self.conversation()
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
        sees_images = request.mmproj is not None
        row = self.store.add_message(conv.id, "assistant", "", complete=False)
        return Reply(self.store, self.models, conv.id, row.id, request,
                     sampling_params(conv.settings),
                     lambda: self.engine_messages(sees_images=sees_images, cid=conv.id),
                     clock=self._clock)

    def _load_request(self) -> LoadRequest:
        conv = self.conversation()
        return load_request(conv.model_path, conv.settings)
