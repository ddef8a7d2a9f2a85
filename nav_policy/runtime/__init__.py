"""Serving learned models: the ONNX Runtime session (PolicyRuntime) and the model-file metadata
contract (ModelMetadata, checked at load). Used by the learned local planners, the deceptive
planner and the exporters alike; imports only the codecs below it."""
