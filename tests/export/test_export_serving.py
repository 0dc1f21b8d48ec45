"""The TF Serving contract of the exported SavedModel, in three pieces:

* what TF Serving reads from the file: signature names, input and output names, dtypes and shapes,
  and the Predict method, as TensorFlow's own reader prints them (``saved_model_cli show``);
* PredictRequests (tensorflow-serving-api protos, through bytes) answered by :func:`answer`, this
  test's emulation of the server's Predict: it proves that the signatures compute the right images
  when called as Predict calls them, not that TF Serving itself accepts the model or behaves so;
* the real server over REST and gRPC on 127.0.0.1, only when a tensorflow_model_server binary is
  installed (no package registry reachable here provides one, so it is skipped here).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import assert_quantizes, keras_images

try:
    from tensorflow_serving.apis import predict_pb2
except ImportError as e:  # pip cannot say --no-deps inside tests/requirements.txt
    raise ImportError("tensorflow-serving-api is missing: pip install --no-deps -r tests/requirements-nodeps.txt "
                      "(make test does)") from e

ATOL = 1e-5
MODEL_NAME = "stylegan2"


def answer(model, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """An emulation, in this process, of what TF Serving's Predict does with ``request``.

    Like the server it requires exactly the signature's inputs with the signature's dtypes, runs
    the signature named in the request (default ``serving_default``) and returns every output
    (or those in ``output_filter``). It is this test's code, not the server's.
    """
    name = request.model_spec.signature_name or "serving_default"
    if name not in model.signatures:
        raise KeyError(f"no signature {name!r}; the model has {sorted(model.signatures)}")
    signature = model.signatures[name]
    specs = signature.structured_input_signature[1]
    if set(request.inputs) != set(specs):
        raise ValueError(f"inputs {sorted(request.inputs)} do not match the signature's {sorted(specs)}")
    feed = {}
    for key, proto in request.inputs.items():
        if tf.as_dtype(proto.dtype) != specs[key].dtype:
            raise ValueError(f"input {key}: dtype {tf.as_dtype(proto.dtype).name}, expected {specs[key].dtype.name}")
        feed[key] = tf.constant(tf.make_ndarray(proto), dtype=specs[key].dtype)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for key, value in signature(**feed).items():
        if not request.output_filter or key in request.output_filter:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return response


def request(signature: str, **inputs) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = MODEL_NAME
    req.model_spec.signature_name = signature
    for key, value in inputs.items():
        req.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return req


def generate_inputs(z, psi=0.7, mode="random", seed=(3, 4)):
    return dict(z=z, truncation_psi=np.float32(psi), noise_mode=mode, noise_seed=np.array(seed, np.int64))


def signature_defs(saved_model_dir: str) -> dict:
    """``{name: {"inputs": {key: (dtype, shape)}, "outputs": ..., "method": ...}}`` as
    ``saved_model_cli show --all`` prints the SignatureDefs of the 'serve' tag set."""
    r = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
                        saved_model_dir, "--all"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout.split("\nThe MetaGraph with tag set")[0]

    def tensors(part: str) -> dict:
        found = re.findall(r"(?:inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (.+)", part)
        return {key: (dtype, shape.strip()) for key, dtype, shape in found}

    out = {}
    for block in text.split("\nsignature_def['")[1:]:
        name, body = block.split("']:", 1)
        inputs, outputs = body.split("contains the following output(s):")
        out[name] = {"inputs": tensors(inputs), "outputs": tensors(outputs),
                     "method": re.search(r"Method name is: (.*)", body).group(1).strip()}
    return out


def test_signatures_as_tensorflow_reads_them(served, tiny):
    """The contract of tf_stylegan2/export/savedmodel.py's docstring for the tiny generator (z 8,
    6 ws of 8, 16x16 RGB, no labels): every signature a Predict one, N dynamic."""
    G, _ = tiny
    assert (G.z_dim, G.num_ws, G.w_dim, G.img_resolution, G.img_channels, G.c_dim) == (8, 6, 8, 16, 3, 0)
    found = signature_defs(os.path.join(served, "1"))
    scalar, seed, images = ("DT_FLOAT", "()"), ("DT_INT64", "(2)"), {"images": ("DT_UINT8", "(-1, 16, 16, 3)")}
    z, ws, mode = ("DT_FLOAT", "(-1, 8)"), ("DT_FLOAT", "(-1, 6, 8)"), ("DT_STRING", "()")
    generate = {"inputs": {"z": z, "truncation_psi": scalar, "noise_mode": mode, "noise_seed": seed},
                "outputs": images, "method": "tensorflow/serving/predict"}
    assert found.pop("__saved_model_init_op")["method"] == ""  # restores the weights, not a signature
    assert found == {
        "generate": generate,
        "serving_default": generate,
        "mapping": {"inputs": {"z": z, "truncation_psi": scalar}, "outputs": {"ws": ws},
                    "method": "tensorflow/serving/predict"},
        "synthesis": {"inputs": {"ws": ws, "noise_mode": mode, "noise_seed": seed}, "outputs": images,
                      "method": "tensorflow/serving/predict"},
    }


def test_predict_requests_are_answered_from_the_savedmodel(served, tiny):
    G, _ = tiny
    model = tf.saved_model.load(os.path.join(served, "1"))
    z = np.random.RandomState(11).randn(2, 8).astype(np.float32)
    # Through bytes, as gRPC carries it.
    req = predict_pb2.PredictRequest.FromString(request("generate", **generate_inputs(z)).SerializeToString())
    assert req.inputs["noise_mode"].dtype == tf.string.as_datatype_enum
    response = predict_pb2.PredictResponse.FromString(answer(model, req).SerializeToString())

    assert list(response.outputs) == ["images"] and response.model_spec.signature_name == "generate"
    proto = response.outputs["images"]
    assert proto.dtype == tf.uint8.as_datatype_enum
    assert [d.size for d in proto.tensor_shape.dim] == [2, 16, 16, 3]
    images = tf.make_ndarray(proto)
    assert_quantizes(images, keras_images(G, z, psi=0.7, noise_mode="random", seed=(3, 4)), ATOL)

    # mapping then synthesis, as a client that edits ws would call them, gives the same images.
    ws_proto = answer(model, request("mapping", z=z, truncation_psi=np.float32(0.7))).outputs["ws"]
    assert [d.size for d in ws_proto.tensor_shape.dim] == [2, G.num_ws, 8]
    synthesized = answer(model, request("synthesis", ws=tf.make_ndarray(ws_proto), noise_mode="random",
                                        noise_seed=np.array([3, 4], np.int64))).outputs["images"]
    np.testing.assert_array_equal(tf.make_ndarray(synthesized), images)

    # serving_default is generate; a request must feed every input with the right dtype.
    default = request("", **generate_inputs(z))
    np.testing.assert_array_equal(tf.make_ndarray(answer(model, default).outputs["images"]), images)
    with pytest.raises(ValueError, match="do not match"):
        answer(model, request("generate", z=z))
    with pytest.raises(ValueError, match="dtype int32"):
        answer(model, request("generate", **{**generate_inputs(z), "noise_seed": np.array([3, 4], np.int32)}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_available(server: subprocess.Popen, url: str, log_path: str, deadline_s: float = 90) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if server.poll() is not None:
            raise AssertionError(f"tensorflow_model_server exited ({server.returncode}):\n{open(log_path).read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                states = [v["state"] for v in json.load(r).get("model_version_status", [])]
                if "AVAILABLE" in states:
                    return
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"model not AVAILABLE within {deadline_s} s:\n{open(log_path).read()}")


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="no tensorflow_model_server on PATH (no package registry here provides it); "
                           "the PredictRequest contract is tested without it above")
def test_tensorflow_model_server_answers_rest_and_grpc(served, tiny, tmp_path):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    G, _ = tiny
    grpc_port, rest_port = _free_port(), _free_port()
    log_path = str(tmp_path / "server.log")
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [shutil.which("tensorflow_model_server"), f"--port={grpc_port}", f"--rest_api_port={rest_port}",
             f"--model_name={MODEL_NAME}", f"--model_base_path={os.path.abspath(served)}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        rest = f"http://127.0.0.1:{rest_port}/v1/models/{MODEL_NAME}"
        _wait_until_available(server, rest, log_path)
        z = np.random.RandomState(12).randn(2, 8).astype(np.float32)
        expected = keras_images(G, z, psi=0.7, noise_mode="random", seed=(3, 4))

        body = {"signature_name": "generate",
                "inputs": {"z": z.tolist(), "truncation_psi": 0.7, "noise_mode": "random", "noise_seed": [3, 4]}}
        post = urllib.request.Request(f"{rest}:predict", data=json.dumps(body).encode(),
                                      headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(post, timeout=60) as r:
            outputs = json.load(r)["outputs"]
        outputs = outputs["images"] if isinstance(outputs, dict) else outputs  # one output: unnamed
        assert_quantizes(np.asarray(outputs, np.uint8), expected, ATOL)

        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(request("generate", **generate_inputs(z)), timeout=60)
        assert response.outputs["images"].dtype == tf.uint8.as_datatype_enum
        assert_quantizes(tf.make_ndarray(response.outputs["images"]), expected, ATOL)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
