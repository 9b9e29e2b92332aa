"""Fixtures of the bad-input catalogue: one tiny untrained checkpoint per session (the
catalogue only needs a model that loads, not one that answers well), an in-process REST
client, and one torch thread (a shared 2-core machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A saved tiny coarse-only model (2 frames, 4 new tokens): never modified by a case
    (cases that damage a checkpoint copy it first)."""
    import uprm

    torch.manual_seed(0)
    model = uprm.build_model(uprm.UPRMConfig.tiny(experts=["coarse"], num_frames=2, max_new_tokens=4))
    return model.save_pretrained(tmp_path_factory.mktemp("robustness-model") / "checkpoint")


@pytest.fixture(scope="session")
def rest_client(tmp_path_factory):
    """``uprm serve``'s app in process (FastAPI's TestClient), no worker: jobs are only
    queued, so what is refused and why is all that runs."""
    from fastapi.testclient import TestClient

    from uprm.serve import ServeConfig, create_app

    root = tmp_path_factory.mktemp("robustness-serve")
    ckpt = root / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    media = root / "media"
    media.mkdir()
    app = create_app(ServeConfig(checkpoint=ckpt, data_dir=root / "data", media_root=media), worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.media_root = media
        yield client
