"""Embedding and classification for route decisions, independent of the HTTP service.

Layers, each importable on its own and none importing the service (``gateway``), FastAPI,
Starlette, uvicorn or httpx:

- ``classifiers.encoders``: text -> L2-normalised vectors (``load_encoder(name)``).
- ``classifiers.heads``: vectors -> label probabilities, served with numpy only.
- ``classifiers.artefact``: a trained head saved as ``arrays.npz`` + ``meta.json``.
- ``classifiers.model``: encoder + head (``RouteModel``) and a two-stage ``Cascade``.
- ``classifiers.serving``: an asyncio front that micro-batches onto one worker thread.
- ``classifiers.textsel``: which part of a chat request is classified.
- ``classifiers.data``, ``classifiers.training``, ``classifiers.evaluation``, ``classifiers.cli``:
  labelled examples in, artefacts and reports out.
"""

__version__ = "0.1.0"
