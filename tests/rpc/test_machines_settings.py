"""Machines in settings.json: checked entry by entry, and what a chat load picks up."""
from __future__ import annotations

import json

from quantdesk.core.runtime.chat import load_request
from quantdesk.core.settings import load_settings, settings_path, update_settings


def test_enabled_machines_reach_every_chat_load_unless_the_door_names_its_own(
        tmp_path, monkeypatch, starter_model):
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path))
    update_settings(machines=[{"endpoint": "10.0.0.1:50052", "enabled": True},
                              {"endpoint": "10.0.0.2", "enabled": False}])
    assert load_request(starter_model, {}).rpc_servers == ("10.0.0.1:50052",)
    # the CLI passes its --rpc list, also when empty: the window's machines do not apply
    assert load_request(starter_model, {"rpc_servers": []}).rpc_servers == ()
    assert load_request(starter_model, {"rpc_servers": ["10.0.0.3:1"]}).rpc_servers == ("10.0.0.3:1",)


def test_bad_entries_are_dropped_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path))
    settings_path().write_text(json.dumps({"schema": 1, "theme": "dark", "machines": [
        {"endpoint": "good:1"}, {"endpoint": "bad port:x"}, "nonsense", {"endpoint": "good:1"},
        {"endpoint": "other", "enabled": False}]}))
    s = load_settings()
    assert s.theme == "dark" and s.warning is None
    assert s.machines == [{"endpoint": "good:1", "enabled": True},
                          {"endpoint": "other:50052", "enabled": False}]
