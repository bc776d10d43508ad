"""``seqlab serve RUN_DIR``: a finished run as an HTTP service (FastAPI + uvicorn).

* :mod:`seqlab.serve.settings`: the service's limits and the bind/API-key rule;
* :mod:`seqlab.serve.endpoints`: the registry of task endpoints (``/generate``, ``/predict``,
  ``/tag``, ``/answer``): request and response schemas, input checks, and a batch function;
* :mod:`seqlab.serve.batching`: micro-batching of concurrent requests into one model call;
* :mod:`seqlab.serve.app`: the FastAPI app (``/health``, ``/info``, the task's endpoint, the
  playground page in ``static/``), body-size limit and API key.
"""
