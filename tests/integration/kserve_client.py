"""Drive KServe's Python client (``InferenceRESTClient``) against a server.

Run by the venv of scripts/kserve-client.sh, not by the suite's Python (kserve's pins
conflict with ours). Reads a JSON list of calls on stdin and prints a JSON list of their
results; an HTTP error becomes ``{"status": …, "message": str(exception)}`` so the test
sees what a KServe user would see printed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from kserve.protocol.rest import v2_datamodels

NUMPY = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": bool, "BYTES": object}


async def run(client: InferenceRESTClient, step: dict[str, Any]) -> Any:
    url, call = step["url"], step["call"]
    if call == "server_live":
        return await client.is_server_live(url)
    if call == "server_ready":
        return await client.is_server_ready(url)
    if call == "model_ready":
        return await client.is_model_ready(url, step["model"])
    if call == "validate":  # the server's JSON against KServe's own data model for it
        async with httpx.AsyncClient() as http:
            answer = await http.request(
                step.get("method", "GET"), url + step["path"], json=step.get("json")
            )
        getattr(v2_datamodels, step["model_class"]).model_validate(answer.json())
        return answer.status_code
    inputs = []
    for spec in step["inputs"]:
        if spec.get("binary", True):
            array = np.array(spec["data"], dtype=NUMPY[spec["datatype"]]).reshape(spec["shape"])
            tensor = InferInput(spec["name"], spec["shape"], spec["datatype"])
            tensor.set_data_from_numpy(array, binary_data=True)
        else:
            tensor = InferInput(spec["name"], spec["shape"], spec["datatype"], data=spec["data"])
        inputs.append(tensor)
    outputs = [
        RequestedOutput(o["name"], {"binary_data": o["binary"]}) for o in step.get("outputs", [])
    ]
    request = InferRequest(
        step["model"],
        inputs,
        request_id=step.get("id"),
        parameters=step.get("parameters"),
        request_outputs=outputs or None,
    )
    response = await client.infer(url, request, model_name=step["model"])
    return {
        "id": response.id,
        "model_name": response.model_name,
        "outputs": {
            o.name: {"datatype": o.datatype, "shape": o.shape, "data": o.as_numpy().tolist()}
            for o in response.outputs
        },
    }


async def main() -> None:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    results = []
    for step in json.load(sys.stdin):
        try:
            results.append(await run(client, step))
        except httpx.HTTPStatusError as exc:
            results.append({"status": exc.response.status_code, "message": str(exc)})
    await client.close()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
