"""Engine tests write their logs and chat stores under a temporary QUANTDESK_HOME."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def quantdesk_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("quantdesk-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANTDESK_HOME", str(home))
        yield home
